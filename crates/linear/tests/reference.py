"""Reference values for crates/linear/tests/reference.rs, computed with scikit-learn.

Run:  python3 -m venv /tmp/linvenv && /tmp/linvenv/bin/pip install scikit-learn pandas
      /tmp/linvenv/bin/python crates/linear/tests/reference.py
It prints the Rust constants pasted into reference.rs (produced with scikit-learn 1.9.1, numpy 2.x).

Parameter mapping (see the crate docs): our objective sums the loss over rows, so
  Ridge(alpha=a)                      == ours alpha=a,   l1_ratio=0
  Lasso(alpha=a)                      == ours alpha=a*n, l1_ratio=1
  ElasticNet(alpha=a, l1_ratio=r)     == ours alpha=a*n, l1_ratio=r
  LogisticRegression(C=c, l1_ratio=r) == ours alpha=1/c, l1_ratio=r
"""
import numpy as np
import sklearn
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge

rng = np.random.RandomState(7)


def arr(name, a):
    a = np.asarray(a, dtype=float).ravel()
    body = ", ".join(repr(round(float(v), 12)) for v in a)
    print(f"const {name}: [f64; {a.size}] = [{body}];")


print(f"// scikit-learn {sklearn.__version__}, numpy {np.__version__}")

# Regression: n = 20, d = 3.
n, d = 20, 3
X = np.round(rng.normal(size=(n, d)), 3)
y = np.round(X @ np.array([1.5, -2.0, 0.3]) + 0.7 + 0.5 * rng.normal(size=n), 3)
arr("REG_X", X)
arr("REG_Y", y)
r = Ridge(alpha=1.0).fit(X, y)
arr("RIDGE_COEF", np.r_[r.coef_, r.intercept_])
r = Ridge(alpha=5.0, fit_intercept=False).fit(X, y)
arr("RIDGE_NOINT_COEF", r.coef_)
r = Lasso(alpha=0.3, tol=1e-12, max_iter=100000).fit(X, y)  # ours: alpha = 0.3 * 20 = 6
arr("LASSO_COEF", np.r_[r.coef_, r.intercept_])
r = ElasticNet(alpha=0.2, l1_ratio=0.5, tol=1e-12, max_iter=100000).fit(X, y)  # ours: alpha = 4
arr("ENET_COEF", np.r_[r.coef_, r.intercept_])

# Binary: n = 30, d = 3 (overlapping classes so the MLE is finite).
n = 30
Xb = np.round(rng.normal(size=(n, d)), 3)
yb = (Xb @ np.array([1.0, -1.0, 0.5]) + 0.8 * rng.normal(size=n) > 0).astype(int)
arr("BIN_X", Xb)
arr("BIN_Y", yb)
m = LogisticRegression(C=1.0, tol=1e-12, max_iter=100000).fit(Xb, yb)
arr("LOGIT_L2_COEF", np.r_[m.coef_.ravel(), m.intercept_])
arr("LOGIT_L2_PROBA", m.predict_proba(Xb[:5])[:, 1])
m = LogisticRegression(C=0.5, l1_ratio=1.0, solver="saga", tol=1e-12, max_iter=1000000).fit(Xb, yb)  # ours: alpha = 2
arr("LOGIT_L1_COEF", np.r_[m.coef_.ravel(), m.intercept_])
arr("LOGIT_L1_PROBA", m.predict_proba(Xb[:5])[:, 1])

# Multinomial: n = 30, d = 3, 3 classes.
Xm = np.round(rng.normal(size=(n, d)), 3)
scores = Xm @ np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.5], [-0.5, 0.5, 1.0]]) + rng.normal(size=(n, 3))
ym = scores.argmax(axis=1)
arr("MULTI_X", Xm)
arr("MULTI_Y", ym)
m = LogisticRegression(C=2.0, tol=1e-12, max_iter=100000).fit(Xm, ym)  # ours: alpha = 0.5
arr("MULTI_COEF", m.coef_)
arr("MULTI_INTERCEPT", m.intercept_)
arr("MULTI_PROBA", m.predict_proba(Xm[:5]))
