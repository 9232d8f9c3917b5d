"""The peers of `cargo xtask bench monitor`, one per run (so each process's
peak memory is its own):

    python peers.py evidently REFERENCE.parquet CURRENT.parquet
    python peers.py whylogs   REFERENCE.parquet
    python peers.py scipy     REFERENCE.parquet CURRENT.parquet

Prints key=value lines: load_s (reading the Parquet files into pandas),
run_s (the tool's own work), drifted (columns flagged, where the tool
decides drift), and version.
"""

import sys
import time

import pandas as pd

tool = sys.argv[1]
t0 = time.perf_counter()
ref = pd.read_parquet(sys.argv[2])
cur = pd.read_parquet(sys.argv[3]) if len(sys.argv) > 3 else None
load_s = time.perf_counter() - t0
numeric = [c for c in ref.columns if pd.api.types.is_numeric_dtype(ref[c])]

t0 = time.perf_counter()
drifted = None
if tool == "evidently":
    import evidently
    from evidently import Report
    from evidently.presets import DataDriftPreset

    version = evidently.__version__
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    result = snapshot.dict()
    run_s = time.perf_counter() - t0
    drifted = []
    for m in result.get("metrics", []):
        name = str(m.get("metric_name", ""))
        if name.startswith("ValueDrift(") and "column=" in name:
            col = name.split("column=")[1].split(",")[0].rstrip(")")
            value = m.get("value")
            config = m.get("config", {})
            threshold = config.get("threshold")
            method = str(config.get("method", ""))
            if isinstance(value, (int, float)) and threshold is not None:
                p_value = "p_value" in method.lower() or method in ("ks", "chisquare", "z")
                if (value < threshold) if p_value else (value >= threshold):
                    drifted.append(col)
elif tool == "whylogs":
    import whylogs
    import whylogs as why

    version = whylogs.__version__
    view = why.log(pandas=ref).view()
    view.to_pandas()
    run_s = time.perf_counter() - t0
elif tool == "scipy":
    import scipy
    from scipy import stats

    version = scipy.__version__
    drifted = []
    for c in numeric:
        r = stats.ks_2samp(ref[c].dropna().to_numpy(), cur[c].dropna().to_numpy())
        if r.pvalue < 0.05:
            drifted.append(c)
    run_s = time.perf_counter() - t0
else:
    sys.exit(f"unknown tool {tool}: use evidently, whylogs or scipy")

print(f"version={version}")
print(f"load_s={load_s:.3f}")
print(f"run_s={run_s:.3f}")
print(f"numeric_columns={len(numeric)}")
if drifted is not None:
    print("drifted=" + ",".join(sorted(drifted)))
