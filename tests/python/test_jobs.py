"""Processing and training jobs running real user code (examples/jobs) on a real server: SageMaker's
layout and variables, outputs and model into the job's run, metrics through the real mlflow client,
status and logs over the API, stop and the maximum runtime, and bad specs answered with 400s."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
from mlflow import MlflowClient

from conftest import REFERENCE

pytestmark = pytest.mark.skipif(REFERENCE, reason="Atelier's own jobs API")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "jobs"
JOBS = "/api/atelier/jobs"


def upload_code(server, *names: str) -> str:
    folder = f"jobs-code/{uuid.uuid4().hex}"
    for n in names:
        r = requests.put(
            f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{folder}/{n}",
            data=(EXAMPLES / n).read_bytes(),
            timeout=20,
        )
        assert r.status_code == 200, r.text
    return folder


def upload_dataset(server, name: str, text: str) -> None:
    r = requests.put(f"{server.url}/api/atelier/datasets/{name}", data=text.encode(), timeout=20)
    assert r.status_code == 201, r.text


def submit(server, kind: str, spec: dict) -> requests.Response:
    return requests.post(f"{server.url}{JOBS}", json={"kind": kind, "spec": spec}, timeout=30)


def wait(server, job_id: str, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = requests.get(f"{server.url}{JOBS}/{job_id}", timeout=10).json()["job"]
        if j["status"] in ("succeeded", "failed", "cancelled"):
            return j
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end: {j}")


def all_logs(server, job_id: str) -> list[dict]:
    lines, nxt = [], 0
    while True:
        r = requests.get(f"{server.url}{JOBS}/{job_id}/logs", params={"from": nxt}, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        lines += body["lines"]
        if body["next"] == nxt:
            return lines
        nxt = body["next"]


def synthetic_csv(rows: int = 400) -> str:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=rows), rng.normal(size=rows)
    label = (a + 0.5 * b + rng.normal(scale=0.3, size=rows) > 0).astype(int)
    out = ["a,b,label"]
    for i in range(rows):
        out.append(f"{'' if i % 50 == 7 else a[i]:},{b[i]},{label[i]}")
    return "\n".join(out) + "\n"


def test_a_processing_job_then_a_training_job_run_user_code_into_runs(server):
    upload_dataset(server, "points.csv", synthetic_csv())
    r = submit(server, "processing", {
        "name": "prep",
        "command": [sys.executable, "prep.py", "--min-rows", "100", "--target", "label"],
        "code": upload_code(server, "prep.py"),
        "inputs": {"raw": "datasets/points.csv"},
        "outputs": ["clean"],
    })
    assert r.status_code == 202, r.text
    prep = wait(server, r.json()["job"]["id"])
    assert prep["status"] == "succeeded", (prep["error"], all_logs(server, prep["id"]))
    assert prep["primary_status"] == "Completed"
    steps = [e["status"] for e in prep["secondary_statuses"]]
    assert steps[:2] == ["Queued", "Starting"] and "Downloading" in steps and "Processing" in steps
    assert steps[-2:] == ["Uploading", "Completed"], steps
    client = MlflowClient(server.url)
    run = client.get_run(prep["result"]["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["atelier.job_id"] == prep["id"]
    assert run.data.tags["atelier.job_kind"] == "processing"
    assert run.data.metrics["rows_in"] == 400, "the script logged into the job's run"
    files = {f.path for f in client.list_artifacts(run.info.run_id, "output/clean")}
    assert files == {"output/clean/train.csv", "output/clean/test.csv"}
    text = [l["text"] for l in all_logs(server, prep["id"])]
    assert any(t.startswith("wrote ") for t in text), text
    assert all(l["stream"] in ("stdout", "stderr") and l["at_ms"] > 0 for l in all_logs(server, prep["id"]))

    r = submit(server, "training", {
        "name": "sgd",
        "command": [sys.executable, "train.py", "--target", "label"],
        "code": upload_code(server, "train.py"),
        "inputs": {"train": f"runs:/{run.info.run_id}/output/clean"},
        "hyperparameters": {"epochs": "6", "lr": "0.05"},
        "register_model": "sgd-points",
    })
    assert r.status_code == 202, r.text
    train = wait(server, r.json()["job"]["id"])
    assert train["status"] == "succeeded", (train["error"], all_logs(server, train["id"]))
    trun = client.get_run(train["result"]["run_id"])
    assert trun.data.params == {"epochs": "6", "lr": "0.05"}
    assert len(client.get_metric_history(trun.info.run_id, "loss")) == 6
    assert len(client.get_metric_history(trun.info.run_id, "val_loss")) == 6
    assert trun.data.metrics["val_accuracy"] > 0.8
    # the process tree was sampled every 500 ms under MLflow's system-metric names
    rss = client.get_metric_history(trun.info.run_id, "system/process_memory_rss_megabytes")
    assert len(rss) >= 2 and max(m.value for m in rss) > 20, rss
    cpu = client.get_metric_history(trun.info.run_id, "system/cpu_utilization_percentage")
    assert [m.step for m in cpu] == list(range(len(cpu)))
    assert {f.path for f in client.list_artifacts(trun.info.run_id, "model")} == {"model/model.pkl"}
    assert [f.path for f in client.list_artifacts(trun.info.run_id, "output/data")] == ["output/data/metrics.json"]
    mv = client.get_model_version("sgd-points", train["result"]["model_version"]["version"])
    assert mv.source == f"runs:/{trun.info.run_id}/model"
    assert train["result"]["model_uri"] == f"runs:/{trun.info.run_id}/model"


def test_failures_say_why_in_words(server):
    code = upload_code(server, "prep.py")
    upload_dataset(server, "tiny.csv", "a,b,label\n1,2,0\n")
    cases = [
        ({"command": ["no-such-program-xyz"]}, "could not start"),
        ({"command": ["sh", "-c", "exit 127"]}, "command not found"),
        ({"command": ["sh", "-c", "echo oops >&2; exit 3"]}, "status 3"),
        ({"command": [sys.executable, "prep.py", "--min-rows", "100"], "code": code,
          "inputs": {"raw": "datasets/tiny.csv"}, "outputs": ["clean"]},
         "only 1 complete rows, fewer than --min-rows 100"),
    ]
    for spec, want in cases:
        r = submit(server, "processing", spec)
        assert r.status_code == 202, r.text
        j = wait(server, r.json()["job"]["id"])
        assert j["status"] == "failed" and want in j["error"], (spec, j["error"])
        assert j["primary_status"] == "Failed"
        run = MlflowClient(server.url).get_run(j["result"]["run_id"] if j["result"] else j["progress"]["run_id"])
        assert run.info.status == "FAILED"
    oops = wait(server, submit(server, "processing", {"command": ["sh", "-c", "echo oops >&2; exit 3"]}).json()["job"]["id"])
    assert [(l["stream"], l["text"]) for l in all_logs(server, oops["id"])] == [("stderr", "oops")]


@pytest.mark.parametrize("spec, want", [
    ({"command": ["x"], "inputs": {"raw": "datasets/missing.csv"}}, "nothing at 'datasets/missing.csv'"),
    ({"command": ["x"], "inputs": {"raw": "runs:/feedbeef/x"}}, "no run with id 'feedbeef'"),
    ({"command": ["x"], "inputs": {"m": "models:/nope@champion"}}, "input 'm'"),
    ({"command": ["x"], "inputs": {"raw": "/etc/passwd"}}, "not a source this server can read"),
    ({"command": ["x"], "code": "../../etc"}, "'code'"),
    ({"command": ["x"], "outptus": ["a"]}, "hyperparameters"),
    ({"command": []}, "give the command"),
])
def test_bad_specs_are_refused_before_anything_runs(server, spec, want):
    before = len(requests.get(f"{server.url}{JOBS}", timeout=10).json()["jobs"])
    r = submit(server, "processing", spec)
    assert r.status_code == 400, r.text
    assert want in r.json()["message"], r.json()
    assert len(requests.get(f"{server.url}{JOBS}", timeout=10).json()["jobs"]) == before


def test_stop_and_the_maximum_runtime_end_the_whole_process_group(server):
    loop = "import time\nfor i in range(10000):\n    print(i, flush=True)\n    time.sleep(0.05)\n"
    r = submit(server, "processing", {"command": [sys.executable, "-c", loop], "stop_grace_seconds": 1})
    job_id = r.json()["job"]["id"]
    deadline = time.time() + 30
    while len(all_logs(server, job_id)) < 5:
        assert time.time() < deadline, "no output while running"
        time.sleep(0.1)
    assert requests.post(f"{server.url}{JOBS}/{job_id}/cancel", timeout=10).status_code == 202
    j = wait(server, job_id, timeout=30)
    assert j["status"] == "cancelled" and j["primary_status"] == "Stopped", j
    assert "Stopping" in [e["status"] for e in j["secondary_statuses"]]
    assert len(all_logs(server, job_id)) >= 5, "the log survives the stop"
    # a TERM-ignoring command past its maximum runtime is killed after the grace
    stubborn = "trap '' TERM; while :; do sleep 0.1; done"
    t = time.time()
    r = submit(server, "processing", {"command": ["sh", "-c", stubborn], "max_runtime_seconds": 2, "stop_grace_seconds": 1})
    j = wait(server, r.json()["job"]["id"], timeout=30)
    assert j["status"] == "failed" and "MaxRuntimeExceeded" in j["error"], j
    assert time.time() - t < 15


CURVES = """
import math, os, sys, time
import mlflow
kind = sys.argv[1]
with mlflow.start_run():
    for step in range(200):
        if kind == "stall":
            m = {"loss": 1.0 + 0.001 * (step % 2)}
        elif kind == "overfit":
            m = {"loss": 1.0 / (step + 1), "val_loss": 0.5 + 0.05 * step}
        else:  # explode
            m = {"loss": float("nan") if step >= 5 else 1.0 / (step + 1)}
        mlflow.log_metrics(m, step=step)
        print("step", step, m, flush=True)
        time.sleep(0.02 if kind == "stall" else 0.1)
        if kind != "overfit" and step >= 30:
            break
"""


def rule(job, label):
    rules = job["progress"].get("rules") or []
    found = [r for r in rules if r["label"] == label]
    assert found, rules
    return found[0]


def test_debugger_rules_watch_the_training_live(server):
    def run(kind, rules):
        r = submit(server, "training", {"command": [sys.executable, "-c", CURVES, kind], "rules": rules, "stop_grace_seconds": 5})
        assert r.status_code == 202, r.text
        return wait(server, r.json()["job"]["id"], timeout=90)

    stall = run("stall", ["LossNotDecreasing"])
    assert stall["status"] == "succeeded", stall["error"]
    r = rule(stall, "LossNotDecreasing")
    assert r["status"] == "IssuesFound" and r["actions"] == ["alert"], r
    assert r["trigger"]["step"] >= 10
    assert "RuleIssuesFound" in [e["status"] for e in stall["secondary_statuses"]]

    overfit = run("overfit", ["Overfit:patience=3,stop_training=true", "ExplodingTensor"])
    assert overfit["status"] == "cancelled" and overfit["primary_status"] == "Stopped", overfit
    assert "Overfit" in overfit["error"] and "StopTraining" in overfit["error"], overfit["error"]
    r = rule(overfit, "Overfit")
    assert r["status"] == "IssuesFound" and "StopTraining" in r["actions"], r
    assert rule(overfit, "ExplodingTensor")["status"] == "NoIssuesFound"
    steps = MlflowClient(server.url).get_metric_history(overfit["progress"]["run_id"], "val_loss")
    assert len(steps) < 100, "stopped long before its 200 steps"

    explode = run("explode", ["ExplodingTensor"])
    r = rule(explode, "ExplodingTensor")
    assert r["status"] == "IssuesFound" and r["trigger"]["step"] == 5, r


def test_unknown_rules_are_refused_with_the_known_ones(server):
    r = submit(server, "training", {"command": ["true"], "rules": ["LossNotDecreasingg"]})
    assert r.status_code == 400
    msg = r.json()["message"]
    assert "LossNotDecreasing" in msg and "Overfit" in msg, msg
    r = submit(server, "training", {"command": ["true"], "rules": ["Overfit:patienc=2"]})
    assert r.status_code == 400 and "patience" in r.json()["message"], r.text


def test_rules_on_an_experiment_watch_runs_logged_from_outside(server):
    """The plain mlflow client, no Atelier job: the experiment's rules still watch the run."""
    import json

    import mlflow

    mlflow.set_tracking_uri(server.url)
    exp = mlflow.set_experiment("watched-from-outside")
    MlflowClient(server.url).set_experiment_tag(
        exp.experiment_id, "atelier.debugger.rules", json.dumps(["LossNotDecreasing", "ExplodingTensor"]))
    with mlflow.start_run() as run:
        for step in range(20):
            mlflow.log_metric("loss", 1.0, step=step)  # stalls
        deadline = time.time() + 30
        while True:
            tags = MlflowClient(server.url).get_run(run.info.run_id).data.tags
            got = json.loads(tags.get("atelier.debugger.LossNotDecreasing", "{}"))
            if got.get("status") == "IssuesFound":
                break
            assert time.time() < deadline, tags
            time.sleep(0.3)
    assert got["trigger"]["step"] >= 10, got
    # after the run ends, the rule that never fired is closed as NoIssuesFound
    deadline = time.time() + 30
    while True:
        tags = MlflowClient(server.url).get_run(run.info.run_id).data.tags
        if json.loads(tags.get("atelier.debugger.ExplodingTensor", "{}")).get("status") == "NoIssuesFound":
            break
        assert time.time() < deadline, tags
        time.sleep(0.3)


def test_outputs_over_the_size_limit_fail_naming_the_output_and_upload_nothing_of_it(server):
    script = 'head -c 5000 /dev/zero > "$ATELIER_OUTPUT_BIG/blob.bin"; echo small > "$ATELIER_OUTPUT_SMALL/note.txt"'
    r = submit(server, "processing", {"command": ["sh", "-c", script], "outputs": ["small", "big"], "max_output_bytes": 1000})
    assert r.status_code == 202, r.text
    j = wait(server, r.json()["job"]["id"])
    assert j["status"] == "failed", j
    assert "output 'big'" in j["error"] and "max_output_bytes" in j["error"], j["error"]
    run_id = j["progress"]["run_id"]
    client = MlflowClient(server.url)
    assert client.list_artifacts(run_id, "output/big") == [], "nothing half-uploaded"
    assert client.get_run(run_id).info.status == "FAILED"
    assert [f.path for f in client.list_artifacts(run_id, "logs")] == ["logs/output.jsonl"], "the log is kept"


def test_the_cli_runs_the_pandas_example_with_a_local_input(server, tmp_path):
    import subprocess

    from conftest import atelier_bin

    data = tmp_path / "points-cli.csv"
    data.write_text(synthetic_csv(200))
    out = subprocess.run(
        [str(atelier_bin()), "jobs", "run", "--server", server.url, "--kind", "processing", "--name", "prep-cli",
         "--input", f"raw={data}", "--output", "clean", "--", sys.executable, "prep.py", "--target", "label"],
        cwd=EXAMPLES, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "wrote " in out.stdout and "training and" in out.stdout, out.stdout
    assert "uploaded" in out.stderr and "Completed: run " in out.stderr, out.stderr
    run_id = out.stderr.split("Completed: run ")[1].split()[0]
    files = {f.path for f in MlflowClient(server.url).list_artifacts(run_id, "output/clean")}
    assert files == {"output/clean/train.csv", "output/clean/test.csv"}
