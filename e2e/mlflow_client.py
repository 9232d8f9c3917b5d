"""Drives the real MLflow Python client against an Atelier server for the Studio e2e tests.

Usage: python mlflow_client.py <tracking_uri> <command> [args...]
  seed <experiment>                 -> prints {"experiment_id", "runs": {name: run_id}}
  log-metric <run_id> <key> <value> <step>
  new-run <experiment> <run_name>   -> prints {"run_id"} (the run has a notes.txt artifact)
"""

import json
import math
import os
import struct
import sys
import tempfile
import zlib

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

import mlflow  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

def png(width=24, height=16):
    """A small valid PNG (a colour gradient), built with zlib."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(
        b"\x00" + b"".join(bytes((x * 10 % 256, y * 15 % 256, 180)) for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def seed(experiment):
    mlflow.set_experiment(experiment)
    exp = mlflow.get_experiment_by_name(experiment)
    specs = [
        # name, params, rmse curve, steps
        ("alpha", {"lr": "0.1", "model": "gbm", "depth": "3"}, lambda s: 1.0 / (s + 1) + 0.30, 12),
        ("beta", {"lr": "0.01", "model": "gbm", "depth": "5"}, lambda s: 2.0 / (s + 1) + 0.10, 12),
        ("gamma", {"lr": "0.3", "model": "linear", "depth": "3"}, lambda s: 0.9 - 0.05 * s, 6),
    ]
    runs = {}
    for name, params, curve, steps in specs:
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_params(params)
            mlflow.set_tag("team", "vision")
            for s in range(steps):
                mlflow.log_metric("rmse", curve(s), step=s)
            mlflow.log_metric("accuracy", 1.0 - curve(steps - 1) / 2, step=steps - 1)
            if name == "alpha":
                mlflow.log_metric("weird", float("nan"), step=0)
                mlflow.log_metric("weird", 2.5, step=1)
                mlflow.log_dict({"best": {"rmse": curve(steps - 1), "step": steps - 1}, "tags": ["a", "b"]}, "report/summary.json")
                rows = ["id,feature,label"] + [f"{i},{math.sin(i):.4f},{i % 2}" for i in range(150)]
                mlflow.log_text("\n".join(rows) + "\n", "data/sample.csv")
                mlflow.log_text("hello from alpha\nsecond line\n", "notes.txt")
                with tempfile.TemporaryDirectory() as d:
                    p = os.path.join(d, "pixel.png")
                    with open(p, "wb") as f:
                        f.write(png())
                    mlflow.log_artifact(p, "images")
            runs[name] = run.info.run_id
    return {"experiment_id": exp.experiment_id, "runs": runs}


def main():
    uri, cmd, *args = sys.argv[1:]
    mlflow.set_tracking_uri(uri)
    if cmd == "seed":
        out = seed(args[0])
    elif cmd == "log-metric":
        run_id, key, value, step = args
        MlflowClient().log_metric(run_id, key, float(value), step=int(step))
        out = {}
    elif cmd == "new-run":
        experiment, name = args
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_param("lr", "0.05")
            mlflow.log_metric("rmse", 0.05, step=0)
            mlflow.log_text(f"notes of {name}\n", "notes.txt")
        out = {"run_id": run.info.run_id}
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
