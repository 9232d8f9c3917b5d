"""The drift checks of `cargo xtask bench monitor-quality`: how often Atelier's and Evidently's
default verdicts are right, on the same windows.

    python quality.py --atelier BIN --data DATASETS_DIR --out RESULTS.jsonl
                      [--trials 40] [--shift-trials 20] [--sizes 200,1000,10000] [--workers 2]

For every dataset of datasets/ (its target column left out, as a model's inputs are) and every
window size s with at least 100 rows left over, each trial draws a random split: s rows are the
current window, the other rows the reference. Then:

- clean: the window as drawn (same distribution as the reference);
- numeric (the first --shift-trials trials): the same window with one numeric column moved by
  0.5 standard deviations of the reference (the column drawn at random among the numeric columns
  both tools compare, with at least 5 distinct values);
- category (likewise): the same window with one category's share raised by 15 points (the column
  drawn among the categorical columns compared, the category among those with a reference share
  from 2 % to 80 %; 15 % of the window's rows holding another value take it).

Atelier: `atelier monitor baseline REFERENCE` then `atelier monitor check` of each window, its
defaults; the verdict is drift_report.json's `drifted` list. Evidently: `Report([DataDriftPreset()])`
with its defaults on the same reference and window; a column is drifted when its ValueDrift value
is beyond the threshold Evidently chose (below it for p-values). Columns Atelier classes as free
text are left out of Evidently's input (its text-drift classifier takes ~15 s a check, and
Atelier does not compare text); everything else, id-like columns included, is given to both.

Writes one JSON object per check to --out and prints a JSON summary on the last line of stdout.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zlib
from multiprocessing import Pool

import numpy as np
import pandas as pd

TARGETS = {
    "penguins": "species",
    "titanic": "Survived",
    "wine_quality": "quality",
    "california_housing": "median_house_value",
    "adult": "income",
    "bank_marketing": "y",
    "diamonds": "price",
}
MIN_REFERENCE = 100

_frames = {}


def frame(data_dir, name):
    if name not in _frames:
        df = pd.read_csv(os.path.join(data_dir, name + ".csv"), keep_default_na=False, na_values=[""])
        _frames[name] = df.drop(columns=[TARGETS[name]])
    return _frames[name]


def atelier_check(bin_path, base_dir, window_csv, out_dir):
    subprocess.run(
        [bin_path, "monitor", "check", "--baseline", base_dir, window_csv, "--output", out_dir],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    with open(os.path.join(out_dir, "drift_report.json")) as f:
        report = json.load(f)
    with open(os.path.join(out_dir, "constraint_violations.json")) as f:
        violations = json.load(f).get("violations", [])
    return report, violations


def evidently_check(ref, cur):
    from evidently import Report
    from evidently.presets import DataDriftPreset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref).dict()
    drifted, dataset_drift = [], False
    for m in result.get("metrics", []):
        name = str(m.get("metric_name", ""))
        value = m.get("value")
        if name.startswith("DriftedColumnsCount(") and isinstance(value, dict):
            share = float(name.split("drift_share=")[1].rstrip(")")) if "drift_share=" in name else 0.5
            dataset_drift = float(value.get("share", 0.0)) >= share
        if name.startswith("ValueDrift(") and "column=" in name:
            col = name.split("column=")[1].split(",method=")[0]
            config = m.get("config", {})
            threshold = config.get("threshold")
            method = str(config.get("method", ""))
            if isinstance(value, (int, float)) and threshold is not None:
                if (value < threshold) if "p_value" in method else (value >= threshold):
                    drifted.append(col)
    return sorted(drifted), dataset_drift


def task(args):
    bin_path, data_dir, name, size, trial, shift = args
    df = frame(data_dir, name)
    rng = np.random.default_rng(zlib.crc32(f"{name}/{size}/{trial}".encode()))
    order = rng.permutation(len(df))
    cur = df.iloc[order[:size]].reset_index(drop=True)
    ref = df.iloc[order[size:]].reset_index(drop=True)
    out = []
    with tempfile.TemporaryDirectory(prefix="mq-") as tmp:
        ref_csv = os.path.join(tmp, "reference.csv")
        ref.to_csv(ref_csv, index=False)
        base = os.path.join(tmp, "baseline")
        subprocess.run(
            [bin_path, "monitor", "baseline", ref_csv, "--output", base],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        windows = [("clean", None, cur)]
        clean_csv = os.path.join(tmp, "clean.csv")
        cur.to_csv(clean_csv, index=False)
        report, violations = atelier_check(bin_path, base, clean_csv, os.path.join(tmp, "c-clean"))
        kinds = {f["name"]: f["kind"] for f in report["features"]}
        compared = {f["name"] for f in report["features"] if f.get("method")}
        text = [c for c, k in kinds.items() if k == "text"]
        results = {"clean": (report, violations)}
        if shift:
            numeric = [
                c
                for c in df.columns
                if c in compared and kinds[c] != "categorical" and ref[c].nunique() >= 5
            ]
            if numeric:
                col = numeric[rng.integers(len(numeric))]
                w = cur.copy()
                w[col] = w[col] + 0.5 * float(ref[col].std(ddof=0))
                windows.append(("numeric", col, w))
            cats = [c for c in df.columns if c in compared and kinds[c] == "categorical"]
            if cats:
                col = cats[rng.integers(len(cats))]
                shares = ref[col].value_counts(normalize=True)
                options = [v for v, s in shares.items() if 0.02 <= s <= 0.80]
                if options:
                    value = options[rng.integers(len(options))]
                    others = np.flatnonzero((cur[col] != value).to_numpy() & cur[col].notna().to_numpy())
                    k = int(round(0.15 * size))
                    if len(others) >= k:
                        w = cur.copy()
                        w[col] = w[col].astype(object)
                        w.loc[rng.choice(others, k, replace=False), col] = value
                        windows.append(("category", col, w))
        for kind, col, w in windows[1:]:
            path = os.path.join(tmp, kind + ".csv")
            w.to_csv(path, index=False)
            results[kind] = atelier_check(bin_path, base, path, os.path.join(tmp, "c-" + kind))
        ev_ref = ref.drop(columns=text)
        for kind, col, w in windows:
            report, violations = results[kind]
            ev_drifted, ev_dataset = evidently_check(ev_ref, w.drop(columns=text))
            out.append(
                {
                    "dataset": name,
                    "size": size,
                    "trial": trial,
                    "kind": kind,
                    "column": col,
                    "reference_rows": len(ref),
                    "atelier_drifted": sorted(report.get("drifted", [])),
                    "atelier_violations": sorted({v.get("constraint_check_type", "?") for v in violations}),
                    "evidently_drifted": ev_drifted,
                    "evidently_dataset_drift": ev_dataset,
                }
            )
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--atelier", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--shift-trials", type=int, default=20)
    ap.add_argument("--sizes", default="200,1000,10000")
    ap.add_argument("--datasets", default=",".join(TARGETS))
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    jobs = []
    for name in a.datasets.split(","):
        if name not in TARGETS:
            sys.exit(f"unknown dataset {name}: use {', '.join(TARGETS)}")
        n = len(frame(a.data, name))
        for size in sizes:
            if n - size < MIN_REFERENCE:
                continue
            for t in range(a.trials):
                jobs.append((a.atelier, a.data, name, size, t, t < a.shift_trials))
    done = 0
    with open(a.out, "w") as f, Pool(a.workers) as pool:
        for rows in pool.imap_unordered(task, jobs):
            for r in rows:
                f.write(json.dumps(r) + "\n")
            done += 1
            if done % 20 == 0 or done == len(jobs):
                print(f"{done}/{len(jobs)} splits checked", file=sys.stderr, flush=True)
    import evidently

    print(json.dumps({"splits": len(jobs), "evidently": evidently.__version__, "pandas": pd.__version__}))


if __name__ == "__main__":
    main()
