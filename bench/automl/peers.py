"""The peers' side of `atelier bench automl`: one tool on one dataset at one budget.

    python peers.py DATA.csv --target COL --task binary|multiclass|regression
        --tool lgbm|flaml|autogluon [--budget SECONDS] [--threads N] [--workdir DIR]

Reads the CSV, makes the train/test split of datasets/README.md (splitmix64 key per 0-based
row; classification: per target value as written in the file, the ceil(20 %) rows with the
smallest keys are test; regression: the same over all rows; both parts keep file order),
checks it against the sizes and first test rows the README lists, fits the tool on the train
part and scores it on the test part with the benchmark's metric (ROC AUC binary, accuracy
multiclass, R² regression). Prints one JSON object on the last line of stdout; the tools'
own logs go to stderr.

Tools:
- lgbm: LightGBM with its default settings (100 trees, 31 leaves, learning rate 0.1), native
  categoricals, num_threads = --threads, seed 0.
- flaml: FLAML AutoML, time_budget = --budget, n_jobs = --threads, metric = the benchmark's
  metric, seed 0, its default estimators.
- autogluon: AutoGluon TabularPredictor, time_limit = --budget, num_cpus = --threads,
  eval_metric = the benchmark's metric, presets medium_quality (its default), without the
  neural-network models (NN_TORCH, FASTAI): their extra needs torch, which this venv does not
  install. AutoGluon gets text columns as strings (its own feature generators decide).

Features: a column whose non-empty cells all parse as numbers is numeric; any other column is a
pandas category (levels sorted as strings) for lgbm and flaml; an empty cell is missing.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd

# the split every tool in a benchmark shares
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from split import encode_target, test_mask  # noqa: E402  (bench/common/split.py)


# datasets/README.md: test rows and the first five test row indices of each dataset
EXPECTED = {
    "penguins": (70, [3, 10, 18, 20, 21]),
    "titanic": (179, [3, 10, 18, 21, 33]),
    "wine_quality": (1302, [3, 10, 18, 21, 33]),
    "california_housing": (4128, [3, 10, 18, 21, 33]),
    "adult": (6513, [3, 10, 18, 21, 33]),
    "bank_marketing": (9043, [3, 10, 18, 21, 33]),
    "diamonds": (10788, [3, 10, 18, 21, 33]),
}


def features(df, categories):
    """Numeric columns as float64; the others as categories (or strings)."""
    X = df.copy()
    for c in X.columns:
        num = pd.to_numeric(X[c], errors="coerce")
        if num.isna().sum() == X[c].isna().sum():
            X[c] = num.astype("float64")
        elif categories:
            X[c] = pd.Categorical(X[c], categories=sorted(X[c].dropna().unique()))
        else:
            X[c] = X[c].astype(object)
    return X


def score(task, y_true, proba_or_pred, classes):
    from sklearn.metrics import r2_score, roc_auc_score

    if task == "binary":
        return "roc_auc", float(roc_auc_score(y_true, proba_or_pred))
    if task == "multiclass":
        return "accuracy", float(np.mean(np.asarray(proba_or_pred) == np.asarray(y_true)))
    return "r2", float(r2_score(y_true, proba_or_pred))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--target", required=True)
    ap.add_argument("--task", required=True, choices=["binary", "multiclass", "regression"])
    ap.add_argument("--tool", required=True, choices=["lgbm", "flaml", "autogluon"])
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()

    name = os.path.basename(a.path).removesuffix(".csv")
    df = pd.read_csv(a.path, dtype=str, keep_default_na=False, na_values=[""])
    if a.target not in df.columns:
        sys.exit(f"{a.path}: no column {a.target!r}")
    labels = df[a.target].fillna("")
    test = test_mask(list(labels), a.task)
    test_rows = np.flatnonzero(test)
    if name in EXPECTED:
        n_test, first = EXPECTED[name]
        got = (len(test_rows), [int(i) for i in test_rows[:5]])
        if got != (n_test, first):
            sys.exit(f"{name}: the split gives {got}, datasets/README.md says {(n_test, first)}")

    X = df.drop(columns=[a.target])
    y, classes = encode_target(labels, a.task)
    ytr, yte = y[~test], y[test]
    versions = {"python": sys.version.split()[0], "pandas": pd.__version__, "numpy": np.__version__}

    t0 = time.perf_counter()
    detail = ""
    if a.tool == "lgbm":
        import lightgbm as lgb

        versions["lightgbm"] = lgb.__version__
        Xc = features(X, categories=True)
        Xtr, Xte = Xc[~test], Xc[test]
        t0 = time.perf_counter()
        params = {"verbose": -1, "seed": 0, "num_threads": a.threads}
        if a.task == "regression":
            params["objective"] = "regression"
        elif a.task == "binary":
            params["objective"] = "binary"
        else:
            params["objective"] = "multiclass"
            params["num_class"] = len(classes)
        bst = lgb.train(params, lgb.Dataset(Xtr, ytr), num_boost_round=100)
        fit_s = time.perf_counter() - t0
        pred = bst.predict(Xte, num_threads=a.threads)
        if a.task == "multiclass":
            pred = pred.argmax(axis=1)
        detail = "100 trees, 31 leaves, learning rate 0.1"
    elif a.tool == "flaml":
        import flaml
        import lightgbm
        import sklearn
        import xgboost
        from flaml import AutoML

        versions.update(
            flaml=flaml.__version__,
            lightgbm=lightgbm.__version__,
            **{"scikit-learn": sklearn.__version__},
            xgboost=xgboost.__version__,
        )
        Xc = features(X, categories=True)
        Xtr, Xte = Xc[~test], Xc[test]
        automl = AutoML()
        t0 = time.perf_counter()
        metric = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}[a.task]
        automl.fit(
            Xtr,
            ytr,
            task="regression" if a.task == "regression" else "classification",
            metric=metric,
            time_budget=a.budget,
            n_jobs=a.threads,
            seed=0,
            verbose=0,
        )
        fit_s = time.perf_counter() - t0
        if a.task == "binary":
            pred = automl.predict_proba(Xte)[:, 1]
        else:
            pred = automl.predict(Xte)
        detail = f"best {automl.best_estimator}"
    else:
        import autogluon.tabular
        from autogluon.tabular import TabularPredictor

        import catboost
        import lightgbm
        import sklearn
        import xgboost

        versions.update(
            **{"autogluon.tabular": autogluon.tabular.__version__},
            lightgbm=lightgbm.__version__,
            catboost=catboost.__version__,
            xgboost=xgboost.__version__,
            **{"scikit-learn": sklearn.__version__},
        )
        Xs = features(X, categories=False)
        label = "__label__"
        train = Xs[~test].copy()
        train[label] = ytr
        metric = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}[a.task]
        problem = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}[
            a.task
        ]
        workdir = a.workdir or tempfile.mkdtemp(prefix="ag-")
        t0 = time.perf_counter()
        predictor = TabularPredictor(
            label=label, eval_metric=metric, problem_type=problem, path=workdir, verbosity=1
        )
        predictor.fit(
            train,
            time_limit=a.budget,
            presets="medium_quality",
            num_cpus=a.threads,
            num_gpus=0,
            excluded_model_types=["NN_TORCH", "FASTAI"],
        )
        fit_s = time.perf_counter() - t0
        Xte = Xs[test]
        if a.task == "binary":
            proba = predictor.predict_proba(Xte)
            pred = proba[1].to_numpy() if 1 in proba.columns else proba.iloc[:, 1].to_numpy()
        else:
            pred = predictor.predict(Xte).to_numpy()
        detail = f"best {predictor.model_best}"

    metric_name, value = score(a.task, yte, pred, classes)
    print(
        json.dumps(
            {
                "dataset": name,
                "tool": a.tool,
                "metric": metric_name,
                "score": value,
                "fit_seconds": fit_s,
                "n_train": int((~test).sum()),
                "n_test": int(test.sum()),
                "first_test": [int(i) for i in test_rows[:5]],
                "versions": versions,
                "detail": detail,
            }
        )
    )


if __name__ == "__main__":
    main()
