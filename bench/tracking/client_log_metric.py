"""Drive the REAL mlflow client: `mlflow.log_metric(k, v, step=i)` in a sync loop.

Used by `cargo xtask bench tracking` against both servers. Prints one JSON line:
{"calls": n, "seconds": s, "points_per_s": n / s}. Only the logging loop is
timed (not `import mlflow`, set_experiment or start_run).

    python client_log_metric.py --tracking-uri http://127.0.0.1:5000 --calls 2000
"""

import argparse
import json
import os
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"  # one sync HTTP call per point

import mlflow  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tracking-uri", required=True)
    ap.add_argument("--calls", type=int, required=True)
    ap.add_argument("--max-seconds", type=float, default=60.0,
                    help="stop early after this long (the rate stays exact)")
    ap.add_argument("--experiment", default="bench-log-metric")
    a = ap.parse_args()

    mlflow.set_tracking_uri(a.tracking_uri)
    mlflow.set_experiment(a.experiment)
    with mlflow.start_run(run_name="log-metric-loop"):
        mlflow.log_metric("warmup", 0.0, step=0)  # open the keep-alive connection
        n = 0
        t0 = time.perf_counter()
        for i in range(a.calls):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
            n += 1
            if time.perf_counter() - t0 > a.max_seconds:
                break
        dt = time.perf_counter() - t0
    print(json.dumps({"calls": n, "seconds": dt, "points_per_s": n / dt}), flush=True)


if __name__ == "__main__":
    main()
