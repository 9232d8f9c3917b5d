"""Prepares `cargo xtask bench serving`: the adult train/test split (datasets/README.md's
rule), the payloads both servers receive, and MLflow's peer model — a 100-tree LightGBM
classifier saved as an MLflow pyfunc that restores the training categories (MLflow's lightgbm
flavour answers 400 to JSON rows whose categorical columns arrive as strings).

usage: python mlflow_model.py ADULT_CSV OUT_DIR
writes OUT_DIR/train.csv, test.csv, single.json, single_mlflow.json, rows100.csv, mlflow_model/
"""

import json
import os
import sys

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd

TARGET = "income"
MASK = (1 << 64) - 1


def key(i):
    z = (i + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def split(df):
    test = set()
    for _, rows in df.groupby(df[TARGET].astype(str), sort=False).groups.items():
        rows = sorted(rows, key=key)
        test.update(rows[: (len(rows) + 4) // 5])
    is_test = df.index.isin(sorted(test))
    return df[~is_test], df[is_test]


class AdultModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import json as _json

        import lightgbm as _lgb

        self.booster = _lgb.Booster(model_file=context.artifacts["booster"])
        with open(context.artifacts["meta"]) as f:
            meta = _json.load(f)
        self.columns = meta["columns"]
        self.categories = meta["categories"]
        self.labels = meta["labels"]

    def predict(self, context, model_input, params=None):
        import pandas as _pd

        x = model_input[self.columns].copy()
        for c, levels in self.categories.items():
            x[c] = _pd.Categorical(x[c].astype("string"), categories=levels)
        for c in self.columns:
            if c not in self.categories:
                x[c] = _pd.to_numeric(x[c], errors="coerce")
        p = self.booster.predict(x)
        label = [self.labels[int(v >= 0.5)] for v in p]
        return _pd.DataFrame({"predicted_label": label, "probability": p})


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    df = pd.read_csv(src, keep_default_na=False, na_values=[""])
    train, test = split(df)
    train.to_csv(os.path.join(out, "train.csv"), index=False)
    features = [c for c in df.columns if c != TARGET]
    test[features].to_csv(os.path.join(out, "test.csv"), index=False)
    cats = {c: sorted(train[c].dropna().astype(str).unique().tolist())
            for c in features if not pd.api.types.is_numeric_dtype(train[c])}
    x = train[features].copy()
    for c, levels in cats.items():
        x[c] = pd.Categorical(x[c].astype("string"), categories=levels)
    labels = sorted(train[TARGET].astype(str).unique().tolist())
    y = (train[TARGET].astype(str) == labels[1]).astype(int)
    booster = lgb.train({"objective": "binary", "learning_rate": 0.05, "verbose": -1,
                         "num_threads": 1}, lgb.Dataset(x, y), num_boost_round=100)
    booster_path = os.path.join(out, "booster.txt")
    booster.save_model(booster_path)
    meta_path = os.path.join(out, "meta.json")
    with open(meta_path, "w") as f:
        json.dump({"columns": features, "categories": cats, "labels": labels}, f)
    model_dir = os.path.join(out, "mlflow_model")
    if not os.path.exists(model_dir):
        mlflow.pyfunc.save_model(model_dir, python_model=AdultModel(),
                                 artifacts={"booster": booster_path, "meta": meta_path})
    # payloads: one row as JSON (each server's JSON form) and 100 rows as CSV with a header
    rows = test[features].head(100)
    one = rows.head(1)
    rec = {c: (None if pd.isna(v) else (v.item() if isinstance(v, np.generic) else v))
           for c, v in one.iloc[0].items()}
    with open(os.path.join(out, "single.json"), "w") as f:
        json.dump(rec, f)
    with open(os.path.join(out, "single_mlflow.json"), "w") as f:
        json.dump({"dataframe_records": [rec]}, f)
    rows.to_csv(os.path.join(out, "rows100.csv"), index=False)
    print(json.dumps({"train": len(train), "test": len(test), "features": len(features)}))


if __name__ == "__main__":
    main()
