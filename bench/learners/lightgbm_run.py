"""LightGBM side of `cargo xtask bench learners`.

Trains LightGBM on one dataset of datasets/ with the split of datasets/README.md
(splitmix64 keys, stratified by the target as written for classification, ceil(20 %)
test) and prints `key=value` lines, the same keys as `crates/gbm/examples/compare.rs
--bench`:

    python lightgbm_run.py PATH.csv --target COL --task binary|multiclass|regression
        [--threads N] [--trees N] [--leaves N] [--lr X] [--bins N] [--repeat N]

Feature preparation mirrors compare.rs: a column whose non-empty cells all parse as
numbers is numeric, anything else is a pandas `category` (levels sorted as strings; an
empty cell is missing); classification targets become class indices (labels sorted as
strings). Training time is `lgb.Dataset` construction (binning) plus `lgb.train`, not
CSV parsing. Batch prediction is `Booster.predict` on the test DataFrame (best of
several runs); single-row latency is the median of individually timed
`Booster.predict` calls on one-row DataFrames (and, for reference, on one-row float64
numpy arrays with category codes, which skips the pandas conversion).
"""

import argparse
import os
import sys
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, r2_score, roc_auc_score

# the split every tool in a benchmark shares
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from split import encode_target, test_mask  # noqa: E402  (bench/common/split.py)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--target", required=True)
    ap.add_argument("--task", required=True, choices=["binary", "multiclass", "regression"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--leaves", type=int, default=31)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--bins", type=int, default=255)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()

    name = a.path.rsplit("/", 1)[-1].removesuffix(".csv")
    df = pd.read_csv(a.path, dtype=str, keep_default_na=False, na_values=[""])
    if a.target not in df.columns:
        sys.exit(f"{a.path}: no column {a.target!r}")
    labels = df[a.target].fillna("")
    test = test_mask(list(labels), a.task)

    X = df.drop(columns=[a.target])
    for c in X.columns:
        num = pd.to_numeric(X[c], errors="coerce")
        if num.isna().sum() == X[c].isna().sum():
            X[c] = num.astype("float64")
        else:
            X[c] = pd.Categorical(X[c], categories=sorted(X[c].dropna().unique()))
    y, classes = encode_target(labels, a.task)
    y = y.astype(float)

    objective = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}
    params = {
        "objective": objective[a.task],
        "num_leaves": a.leaves,
        "learning_rate": a.lr,
        "max_bin": a.bins,
        "num_threads": a.threads,
        "verbose": -1,
        "seed": 0,
    }
    if a.task == "multiclass":
        params["num_class"] = len(classes)

    Xtr, Xte, ytr, yte = X[~test], X[test], y[~test], y[test]
    best = float("inf")
    bst = None
    for _ in range(max(1, a.repeat)):
        t0 = time.perf_counter()
        ds = lgb.Dataset(Xtr, ytr, params=dict(params))
        bst = lgb.train(params, ds, num_boost_round=a.trees)
        best = min(best, time.perf_counter() - t0)

    # batch prediction, best of several runs
    runs, batch_best = 0, float("inf")
    start = time.perf_counter()
    while runs < 3 or (time.perf_counter() - start < 0.3 and runs < 1000):
        t0 = time.perf_counter()
        pred = bst.predict(Xte, num_threads=a.threads)
        batch_best = min(batch_best, time.perf_counter() - t0)
        runs += 1

    if a.task == "binary":
        metric_name, metric = "auc", roc_auc_score(yte, pred)
        ll = log_loss(yte, pred, labels=[0, 1])
    elif a.task == "multiclass":
        metric_name, metric = "accuracy", float((pred.argmax(axis=1) == yte).mean())
        ll = log_loss(yte, pred, labels=list(range(len(classes))))
    else:
        metric_name, metric = "r2", r2_score(yte, pred)
        ll = float("nan")

    # the same rows as float64 numpy (category codes, -1 -> NaN), as LightGBM converts them
    cols = []
    for c in Xte.columns:
        if isinstance(Xte[c].dtype, pd.CategoricalDtype):
            codes = Xte[c].cat.codes.to_numpy(dtype=float)
            codes[codes < 0] = np.nan
            cols.append(codes)
        else:
            cols.append(Xte[c].to_numpy(dtype=float))
    Xnp = np.column_stack(cols)
    pred_np = bst.predict(Xnp, num_threads=a.threads)
    if not np.allclose(pred_np, pred, rtol=1e-9, atol=1e-12):
        sys.exit("numpy and DataFrame predictions differ: category codes are not what LightGBM uses")

    def median_latency(one_row_inputs, calls):
        for inp in one_row_inputs[:20]:
            bst.predict(inp, num_threads=a.threads)
        times = []
        for k in range(calls):
            inp = one_row_inputs[k % len(one_row_inputs)]
            t0 = time.perf_counter()
            bst.predict(inp, num_threads=a.threads)
            times.append(time.perf_counter() - t0)
        times.sort()
        return times[len(times) // 2] * 1e6

    n_rows = min(len(Xte), 300)
    single_df = median_latency([Xte.iloc[[r]] for r in range(n_rows)], 300)
    single_np = median_latency([Xnp[r : r + 1] for r in range(n_rows)], 1000)

    print(f"dataset={name}")
    print(f"task={a.task}")
    print(f"library=lightgbm-{lgb.__version__}")
    print(f"threads={a.threads}")
    print(f"n_train={len(Xtr)}")
    print(f"n_test={len(Xte)}")
    print(f"n_features={Xte.shape[1]}")
    print(f"trees={bst.num_trees()}")
    print(f"metric_name={metric_name}")
    print(f"metric={metric:.6f}")
    print(f"logloss={ll:.6f}")
    print(f"train_s={best:.6f}")
    print(f"predict_rows_per_s={len(Xte) / batch_best:.1f}")
    print(f"single_row_us={single_df:.3f}")
    print("single_row_calls=300")
    print(f"single_row_numpy_us={single_np:.3f}")
    print(f"model_bytes={len(bst.model_to_string().encode())}")
    print(f"versions=lightgbm {lgb.__version__}, pandas {pd.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
