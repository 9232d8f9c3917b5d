"""Reference and current data for `cargo xtask bench monitor`: 1M rows x 20
columns (15 numeric, 5 categorical) resampled from the repository's datasets/.

Rows are drawn with replacement, independently per source dataset
(california_housing: 9 numeric + ocean_proximity; diamonds: 6 numeric +
cut, color, clarity; adult: workclass), numbers jittered by 1 % of their
column's standard deviation. The current data is drawn the same way with
another seed, then `median_income` is shifted by +0.5 (about a quarter of
its standard deviation) and a quarter of the non-INLAND `ocean_proximity`
values become INLAND: those two columns, and only they, have drifted.

    python make_data.py SHARED_DATASETS_DIR OUT_DIR [ROWS]

writes OUT_DIR/reference.parquet, OUT_DIR/current.parquet (and .csv).
"""

import os
import sys

import numpy as np
import pandas as pd

src, out = sys.argv[1], sys.argv[2]
rows = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
os.makedirs(out, exist_ok=True)

cal = pd.read_csv(os.path.join(src, "california_housing.csv"))
dia = pd.read_csv(os.path.join(src, "diamonds.csv")).drop(columns=["z"])
adult = pd.read_csv(os.path.join(src, "adult.csv"))[["workclass"]]


def draw(seed):
    rng = np.random.default_rng(seed)
    parts = []
    for df in (cal, dia, adult):
        idx = rng.integers(0, len(df), rows)
        part = df.iloc[idx].reset_index(drop=True)
        for c in part.columns:
            if pd.api.types.is_numeric_dtype(part[c]):
                sd = float(df[c].std())
                part[c] = part[c].astype("float64") + rng.normal(0, 0.01 * sd, rows)
        parts.append(part)
    return pd.concat(parts, axis=1)


ref = draw(1)
cur = draw(2)
cur["median_income"] = cur["median_income"] + 0.5
rng = np.random.default_rng(3)
flip = (cur["ocean_proximity"] != "INLAND") & (rng.random(rows) < 0.25)
cur.loc[flip, "ocean_proximity"] = "INLAND"

for name, df in (("reference", ref), ("current", cur)):
    df.to_parquet(os.path.join(out, f"{name}.parquet"), index=False)
    df.to_csv(os.path.join(out, f"{name}.csv"), index=False)
print(f"rows={rows} columns={ref.shape[1]} numeric={sum(pd.api.types.is_numeric_dtype(ref[c]) for c in ref.columns)}")
