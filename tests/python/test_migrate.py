"""`atelier migrate`: a SQLite installation moved up to PostgreSQL and an S3-compatible bucket.

A server on the embedded defaults is filled through the real `mlflow` client (an experiment, a run
with a metric history, params, tags and an artifact, a registered model version), stopped, and moved
with `atelier migrate --to postgres://… --artifacts s3://…`. A server started on the new backends
then answers the same client with the same ids, values and bytes; the source folder is unchanged;
a second move into the same database is refused.

PostgreSQL comes from ATELIER_TEST_DATABASE_URL (`cargo xtask test` starts one); the S3 server is
the SigV4-checking s3s-fs of tests/python/test_s3_artifacts.py.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid

import mlflow
import pytest

from conftest import REFERENCE, atelier_bin, start_server, with_database
from test_s3_artifacts import BUCKET, KEY, SECRET, s3, serve_args  # noqa: F401  (s3 is a fixture)

pytestmark = pytest.mark.skipif(REFERENCE, reason="Atelier's own command")

PG = os.environ.get("ATELIER_TEST_DATABASE_URL", "")


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(not PG, reason="needs ATELIER_TEST_DATABASE_URL (a PostgreSQL server; cargo xtask test sets it)")
def test_a_sqlite_installation_moves_to_postgresql_and_s3_whole(s3, tmp_path, monkeypatch):
    data = tmp_path / "one-machine"
    # the source is the embedded default: SQLite, whatever the suite's backend
    monkeypatch.delenv("ATELIER_TEST_DATABASE_URL", raising=False)
    src = start_server(data)
    try:
        client = mlflow.MlflowClient(tracking_uri=src.url)
        exp = client.create_experiment("moving-up", tags={"team": "vision"})
        run = client.create_run(exp, run_name="baseline")
        rid = run.info.run_id
        client.log_batch(rid, metrics=[mlflow.entities.Metric("loss", 1.0 / (i + 1), 1000 + i, i)
                                       for i in range(300)],
                         params=[mlflow.entities.Param("lr", "0.01")],
                         tags=[mlflow.entities.RunTag("stage", "dev")])
        art = tmp_path / "weights.bin"
        art.write_bytes(os.urandom(300_000))
        client.log_artifact(rid, str(art), "model")
        client.set_terminated(rid)
        client.create_registered_model("mover")
        client.create_model_version("mover", f"runs:/{rid}/model", rid)
    finally:
        src.stop()
    before = digest(data / "metadata.db")

    url = with_database(PG, f"atelier_m_{uuid.uuid4().hex[:12]}")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    env.pop("ATELIER_TEST_DATABASE_URL", None)
    cmd = [str(atelier_bin()), "migrate", "--data-dir", str(data), "--to", url,
           "--artifacts", f"s3://{BUCKET}/moved", "--s3-endpoint", s3["endpoint"], "--s3-region", "us-east-1"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = dict(line.split("\t") for line in done.stdout.strip().splitlines()[1:])
    assert int(rows["metric_points"]) == 300, done.stdout
    assert int(rows["artifact files"]) >= 1, done.stdout
    assert "counts verified" in done.stderr
    assert "atelier serve --database-url" in done.stderr
    assert digest(data / "metadata.db") == before, "the source must be left untouched"
    # the object landed in the bucket under the new prefix
    assert list((s3["root"] / BUCKET / "moved").rglob("weights.bin")), "artifact not in the bucket"

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    up = start_server(tmp_path / "replica", ["--database-url", url, *serve_args(s3, "moved")])
    try:
        client = mlflow.MlflowClient(tracking_uri=up.url)
        e = client.get_experiment_by_name("moving-up")
        assert e.experiment_id == exp and e.tags["team"] == "vision"
        r = client.get_run(rid)
        assert r.info.run_name == "baseline" and r.info.status == "FINISHED"
        assert r.data.params == {"lr": "0.01"} and r.data.tags["stage"] == "dev"
        hist = client.get_metric_history(rid, "loss")
        assert [m.step for m in hist] == list(range(300))
        assert hist[0].timestamp == 1000
        got = client.download_artifacts(rid, "model/weights.bin", str(tmp_path / "down"))
        assert open(got, "rb").read() == art.read_bytes()
        mv = client.get_model_version("mover", "1")
        assert mv.run_id == rid
        # new writes continue after the moved ids
        assert int(client.create_experiment("after-the-move")) > int(exp)
    finally:
        up.stop()

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0
    assert "not empty" in again.stderr, again.stderr
