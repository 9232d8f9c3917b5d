"""`atelier serve --artifacts s3://...` against a real S3 server that checks SigV4 signatures.

The server is s3s-fs run in-process by the `s3_server` example of crates/artifacts (objects are
plain files under its root, so the test can see where each artifact landed). The real `mlflow`
client logs, lists and downloads artifacts through Atelier, which keeps them in the bucket.

ATELIER_S3_SERVER names the example binary; without it the test builds it with cargo.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import time
import uuid
from pathlib import Path

import mlflow
import pytest
import requests

from conftest import REFERENCE, REPO_ROOT, atelier_bin, free_port, start_server

pytestmark = pytest.mark.skipif(REFERENCE, reason="Atelier's own artifact-store option")

KEY, SECRET = "atelier-ci", "s3s-Secret-Key-0123"
BUCKET = "ml-artifacts"


def s3_server_bin() -> Path:
    env = os.environ.get("ATELIER_S3_SERVER")
    if env:
        return Path(env)
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "artifacts", "--example", "s3_server"],
        cwd=REPO_ROOT, check=True, timeout=1200,
    )
    return REPO_ROOT / "target/debug/examples/s3_server"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    root = tmp_path_factory.mktemp("s3root")
    proc = subprocess.Popen(
        [str(s3_server_bin()), str(root), KEY, SECRET, BUCKET],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on http://127.0.0.1:"), line
    yield {"endpoint": line.split()[-1], "root": root}
    proc.stdin.close()  # the example exits when its stdin closes
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def serve_args(s3, prefix="atelier"):
    return ["--artifacts", f"s3://{BUCKET}/{prefix}", "--s3-endpoint", s3["endpoint"],
            "--s3-region", "us-east-1"]


@pytest.fixture(scope="module")
def s3_server(s3, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", KEY)
    mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    try:
        srv = start_server(tmp_path_factory.mktemp("data"), serve_args(s3))
    finally:
        mp.undo()
    yield srv
    srv.stop()


def test_the_mlflow_client_logs_and_downloads_artifacts_kept_in_the_bucket(s3, s3_server, tmp_path):
    client = mlflow.MlflowClient(tracking_uri=s3_server.url)
    exp = client.create_experiment(f"s3-{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp)
    rid = run.info.run_id
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri
    rel = run.info.artifact_uri[len("mlflow-artifacts:/"):].lstrip("/")

    src = tmp_path / "src"
    (src / "data").mkdir(parents=True)
    (src / "hello.txt").write_text("hello from s3\n")
    (src / "data" / "a.csv").write_text("x,y\n1,2\n")
    # 20 MiB of varied bytes: above the 8 MiB single-put limit, so Atelier
    # sends it to S3 as a multipart upload
    big = os.urandom(20 << 20)
    (src / "model.bin").write_bytes(big)
    client.log_artifact(rid, str(src / "hello.txt"))
    client.log_artifacts(rid, str(src / "data"), artifact_path="data")
    client.log_artifact(rid, str(src / "model.bin"), artifact_path="model")
    client.log_text(rid, "some notes", "notes/n.txt")

    # every object is in the bucket, under the prefix and the run's path; none on local disk
    in_bucket = s3["root"] / BUCKET / "atelier" / rel
    assert (in_bucket / "hello.txt").read_text() == "hello from s3\n"
    assert (in_bucket / "data" / "a.csv").read_text() == "x,y\n1,2\n"
    assert (in_bucket / "model" / "model.bin").stat().st_size == len(big)
    assert (in_bucket / "model" / "model.bin").read_bytes() == big
    local = s3_server.data_dir / "artifacts"
    assert not local.exists() or not any(p.is_file() for p in local.rglob("*")), list(local.rglob("*"))

    # listing and downloading through the client
    top = {f.path: f for f in client.list_artifacts(rid)}
    assert set(top) == {"hello.txt", "data", "model", "notes"}
    assert top["data"].is_dir and not top["hello.txt"].is_dir
    assert [(f.path, f.file_size) for f in client.list_artifacts(rid, "model")] == [
        ("model/model.bin", len(big))]
    out = tmp_path / "out"
    out.mkdir()
    p = mlflow.artifacts.download_artifacts(
        run_id=rid, artifact_path="model/model.bin", dst_path=str(out), tracking_uri=s3_server.url)
    assert hashlib.sha256(Path(p).read_bytes()).digest() == hashlib.sha256(big).digest()
    whole = Path(client.download_artifacts(rid, "", str(tmp_path / "all")))
    assert (whole / "data" / "a.csv").read_text() == "x,y\n1,2\n"
    assert (whole / "notes" / "n.txt").read_text() == "some notes"

    # a ranged read (the Studio's preview of big files) is served from S3 too
    r = requests.get(f"{s3_server.url}/api/2.0/mlflow-artifacts/artifacts/{rel}/hello.txt",
                     headers={"Range": "bytes=0-4"}, timeout=20)
    assert r.status_code in (200, 206), r.text
    assert r.content.startswith(b"hello")


def test_a_job_reads_a_dataset_from_the_bucket_and_writes_its_result_there(s3, s3_server):
    rows = ["a,b,label"] + [f"{i % 7},{(i * 3) % 11},{i % 2}" for i in range(200)]
    r = requests.put(f"{s3_server.url}/api/atelier/datasets/points.csv",
                     data=("\n".join(rows) + "\n").encode(), timeout=20)
    assert r.status_code == 201, r.text
    assert (s3["root"] / BUCKET / "atelier" / "datasets" / "points.csv").exists()
    # a baseline job downloads the dataset to a temporary file, profiles it
    # and stores the baseline back in the artifact store
    r = requests.post(f"{s3_server.url}/api/atelier/baselines",
                      json={"dataset": "points.csv", "name": "points"}, timeout=20)
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    deadline = time.time() + 120
    while time.time() < deadline:
        j = requests.get(f"{s3_server.url}/api/atelier/jobs/{job_id}", timeout=10).json()["job"]
        if j["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.2)
    assert j["status"] == "succeeded", j
    base = s3["root"] / BUCKET / "atelier" / "baselines" / "points"
    assert base.is_dir() and any(base.iterdir()), base
    # a dataset that is not in the bucket is refused when the job is submitted
    r = requests.post(f"{s3_server.url}/api/atelier/baselines",
                      json={"dataset": "missing.csv", "name": "m"}, timeout=20)
    assert r.status_code == 400, r.text
    assert "no dataset named 'missing.csv'" in r.text


def test_a_wrong_secret_stops_start_up_with_a_message_naming_the_setting(s3, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATELIER_", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY="not-the-right-secret")
    t = time.monotonic()
    p = subprocess.run(
        [str(atelier_bin()), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(tmp_path / "d"), *serve_args(s3, "refused")],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert p.returncode != 0, p.stdout + p.stderr
    assert time.monotonic() - t < 30
    err = p.stderr
    assert "refused the credentials" in err and "AWS_SECRET_ACCESS_KEY" in err, err
    assert "not-the-right-secret" not in err + p.stdout
    # it never listened, and wrote nothing to the bucket
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
    assert not (s3["root"] / BUCKET / "refused").exists()

    # a bucket that does not exist is named as such
    env["AWS_SECRET_ACCESS_KEY"] = SECRET
    p = subprocess.run(
        [str(atelier_bin()), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(tmp_path / "d"), "--artifacts", "s3://no-such-bucket/x",
         "--s3-endpoint", s3["endpoint"]],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert "'no-such-bucket' does not exist" in p.stderr, p.stderr


def test_keys_from_the_config_file_work_and_never_reach_the_logs(s3, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    cfg = tmp_path / "atelier.toml"
    cfg.write_text(
        f'artifacts = "s3://{BUCKET}/from-config"\n'
        f's3_endpoint = "{s3["endpoint"]}"\n'
        f's3_access_key_id = "{KEY}"\n'
        f's3_secret_access_key = "{SECRET}"\n')
    srv = start_server(tmp_path / "data", ["--config", str(cfg), "--log", "debug"])
    try:
        client = mlflow.MlflowClient(tracking_uri=srv.url)
        run = client.create_run(client.create_experiment(f"cfg-{uuid.uuid4().hex[:8]}"))
        client.log_text(run.info.run_id, "via config keys", "k.txt")
        rel = run.info.artifact_uri[len("mlflow-artifacts:/"):].lstrip("/")
        assert (s3["root"] / BUCKET / "from-config" / rel / "k.txt").read_text() == "via config keys"
    finally:
        srv.stop()
    logs = srv.logs()
    assert "s3://ml-artifacts/from-config" in logs, logs
    assert SECRET not in logs

    # the wrong secret in the file: refused at start-up, the file's keys named, the secret not shown
    cfg.write_text(cfg.read_text().replace(SECRET, "wrong-in-file"))
    p = subprocess.run(
        [str(atelier_bin()), "serve", "--host", "127.0.0.1", "--port", str(free_port()),
         "--data-dir", str(tmp_path / "d2"), "--config", str(cfg)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith(("ATELIER_", "AWS_"))})
    assert p.returncode != 0
    assert "s3_secret_access_key" in p.stderr and "wrong-in-file" not in p.stderr + p.stdout, p.stderr


def test_a_deployed_model_and_a_batch_transform_work_from_the_bucket(s3, s3_server, tmp_path):
    """Code that needs files on this machine (the batch transform's input) gets downloaded
    copies; the model is read from S3 and the job's output goes back there."""
    titanic = REPO_ROOT / "datasets" / "titanic.csv"
    model = tmp_path / "t.model"
    r = subprocess.run([str(atelier_bin()), "train", str(titanic), "--target", "Survived", "-o", str(model)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    name = f"t{uuid.uuid4().hex[:6]}"
    r = subprocess.run([str(atelier_bin()), "deploy", str(model), "--name", name, "--server", s3_server.url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # the pipeline file went into the bucket, and the endpoint answers from it
    stored = list((s3["root"] / BUCKET / "atelier" / "endpoints" / name).rglob("pipeline.atelier"))
    assert len(stored) == 1 and stored[0].read_bytes() == model.read_bytes(), stored
    with open(titanic, newline="") as f:
        rows = list(csv.DictReader(f))
    first = {k: v for k, v in rows[0].items() if k != "Survived"}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(first))
    w.writeheader()
    w.writerow(first)
    body = buf.getvalue()
    inv = requests.post(f"{s3_server.url}/endpoints/{name}/invocations", data=body,
                        headers={"Content-Type": "text/csv"}, timeout=30)
    assert inv.status_code == 200, inv.text

    # batch transform of a dataset kept in the bucket, output into the bucket
    r = requests.put(f"{s3_server.url}/api/atelier/datasets/titanic.csv", data=titanic.read_bytes(), timeout=20)
    assert r.status_code == 201, r.text
    ep = requests.get(f"{s3_server.url}/api/atelier/endpoints/{name}", timeout=10).json()
    r = requests.post(f"{s3_server.url}/api/atelier/jobs", json={"kind": "batch-transform", "spec": {
        "model": ep["endpoint"]["variants"][0]["model"], "dataset": "titanic.csv"}}, timeout=30)
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    deadline = time.time() + 120
    while time.time() < deadline:
        j = requests.get(f"{s3_server.url}/api/atelier/jobs/{job_id}", timeout=10).json()["job"]
        if j["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.2)
    assert j["status"] == "succeeded", j
    out = s3["root"] / BUCKET / "atelier" / "batch-transform" / job_id
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".errors")]
    assert len(files) == 1, files
    with open(files[0], newline="") as f:
        assert len(list(csv.DictReader(f))) == len(rows)  # one prediction per input row
