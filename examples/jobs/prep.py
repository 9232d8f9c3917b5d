"""A processing job: clean a CSV and split it into train and test sets.

SageMaker-style paths, moved by the environment: the job's folder stands in for /opt/ml
(ATELIER_JOB_DIR), so inputs are under processing/input/<name> and outputs under
processing/output/<name>, exactly as in a SageMaker processing container.

    atelier jobs run --kind processing --name prep --input raw=data.csv --output clean \
        -- python prep.py --min-rows 100 --target label
"""

import argparse
import glob
import os

import pandas as pd

root = os.environ.get("ATELIER_JOB_DIR", "/opt/ml")
in_dir = os.path.join(root, "processing", "input", "raw")
out_dir = os.path.join(root, "processing", "output", "clean")

p = argparse.ArgumentParser()
p.add_argument("--min-rows", type=int, default=10)
p.add_argument("--target", default="label")
p.add_argument("--test-fraction", type=float, default=0.2)
args = p.parse_args()

files = sorted(glob.glob(os.path.join(in_dir, "**", "*.csv"), recursive=True))
if not files:
    raise SystemExit(f"no CSV under {in_dir}")
df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
rows_in = len(df)
df = df.dropna()
print(f"read {rows_in} rows from {len(files)} file(s); {len(df)} without missing values", flush=True)
if len(df) < args.min_rows:
    with open(os.path.join(root, "output", "message"), "w") as f:
        f.write(f"only {len(df)} complete rows, fewer than --min-rows {args.min_rows}")
    raise SystemExit(1)
if args.target not in df.columns:
    raise SystemExit(f"no column {args.target!r}; columns: {list(df.columns)}")
test = df.sample(frac=args.test_fraction, random_state=0)
train = df.drop(test.index)
os.makedirs(out_dir, exist_ok=True)
train.to_csv(os.path.join(out_dir, "train.csv"), index=False)
test.to_csv(os.path.join(out_dir, "test.csv"), index=False)
print(f"wrote {len(train)} training and {len(test)} test rows", flush=True)

if os.environ.get("MLFLOW_RUN_ID"):
    import mlflow

    with mlflow.start_run():  # the job's run, from MLFLOW_RUN_ID
        mlflow.log_metrics({"rows_in": rows_in, "rows_train": len(train), "rows_test": len(test)})
