"""A basic tracking scenario for `mlflow-skinny==3.17.2` (no pandas, no sklearn).

Run by test_skinny.py with the interpreter in $ATELIER_SKINNY_PYTHON:
    $ATELIER_SKINNY_PYTHON tests/python/skinny_scenario.py http://127.0.0.1:<port>
Exits 0 and prints SKINNY-OK when every step behaved; any failure raises.
"""

import os
import sys
import tempfile
import uuid

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402


def main(url: str) -> None:
    mlflow.set_tracking_uri(url)
    name = f"skinny-{uuid.uuid4().hex[:8]}"
    exp = mlflow.set_experiment(name)
    assert mlflow.set_experiment(name).experiment_id == exp.experiment_id

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "report.txt")
        with open(path, "w") as f:
            f.write("skinny artifact\n")
        with mlflow.start_run(run_name="skinny-run") as run:
            mlflow.log_params({"lr": 0.01, "depth": 3})
            mlflow.log_param("opt", "adam")
            for step in range(5):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow.log_metrics({"acc": 0.9, "f1": 0.8})
            mlflow.set_tag("flavor", "skinny")
            mlflow.log_artifact(path, artifact_path="reports")
            mlflow.log_dict({"k": [1, 2]}, "conf.json")
    rid = run.info.run_id

    c = MlflowClient(url)
    got = c.get_run(rid)
    assert got.info.status == "FINISHED", got.info.status
    assert got.data.params == {"lr": "0.01", "depth": "3", "opt": "adam"}, got.data.params
    assert got.data.metrics == {"loss": 0.2, "acc": 0.9, "f1": 0.8}, got.data.metrics
    assert got.data.tags["flavor"] == "skinny"
    assert [m.step for m in c.get_metric_history(rid, "loss")] == list(range(5))

    runs = c.search_runs([exp.experiment_id], filter_string="params.opt = 'adam' and metrics.acc > 0.5")
    assert [r.info.run_id for r in runs] == [rid], runs
    runs = c.search_runs([exp.experiment_id], filter_string="metrics.acc > 0.95")
    assert list(runs) == []
    listed = mlflow.search_runs(experiment_ids=[exp.experiment_id], output_format="list")
    assert [r.info.run_id for r in listed] == [rid]

    assert sorted(f.path for f in c.list_artifacts(rid)) == ["conf.json", "reports"]
    with tempfile.TemporaryDirectory() as d:
        p = c.download_artifacts(rid, "reports/report.txt", d)
        with open(p) as f:
            assert f.read() == "skinny artifact\n"
    assert mlflow.artifacts.load_dict(f"runs:/{rid}/conf.json") == {"k": [1, 2]}
    print("SKINNY-OK")


if __name__ == "__main__":
    main(sys.argv[1])
