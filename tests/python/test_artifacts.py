"""Artifacts through the real client (proxied `mlflow-artifacts:` URIs) and the raw artifact routes."""

import json
import os
from pathlib import Path

import mlflow
import pytest
import requests

from _helpers import API, assert_error

ART = "/api/2.0/mlflow-artifacts/artifacts"


def rel_root(run):
    """`<exp>/<run>/artifacts`: the run's path under the artifact root (from its artifact_uri)."""
    uri = run.info.artifact_uri
    assert uri.startswith("mlflow-artifacts:/"), uri
    return uri[len("mlflow-artifacts:/"):].lstrip("/")


@pytest.fixture
def files(tmp_path):
    src = tmp_path / "src"
    (src / "folder" / "nested").mkdir(parents=True)
    (src / "hello.txt").write_text("hello world\n")
    (src / "folder" / "a.csv").write_text("x,y\n1,2\n")
    (src / "folder" / "nested" / "b.bin").write_bytes(bytes(range(256)) * 4)
    (src / "space name ü.txt").write_text("unicode name\n", encoding="utf-8")
    return src


def test_log_and_download_every_kind(client, experiment_id, files, tmp_path):
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(files / "hello.txt"))
        mlflow.log_artifact(str(files / "hello.txt"), artifact_path="sub/dir")
        mlflow.log_artifacts(str(files / "folder"), artifact_path="data")
        mlflow.log_dict({"a": 1, "b": [1, 2]}, "conf/params.json")
        mlflow.log_text("some text", "notes.txt")
        mlflow.log_artifact(str(files / "space name ü.txt"))
    rid = run.info.run_id

    root = {f.path: f for f in client.list_artifacts(rid)}
    assert set(root) == {"hello.txt", "sub", "data", "conf", "notes.txt", "space name ü.txt"}
    assert root["hello.txt"].is_dir is False and root["hello.txt"].file_size == len("hello world\n")
    assert root["sub"].is_dir and root["data"].is_dir

    assert [f.path for f in client.list_artifacts(rid, "sub/dir")] == ["sub/dir/hello.txt"]
    data = {f.path: f for f in client.list_artifacts(rid, "data")}
    assert set(data) == {"data/a.csv", "data/nested"}
    assert data["data/nested"].is_dir
    nested = client.list_artifacts(rid, "data/nested")
    assert [(f.path, f.file_size) for f in nested] == [("data/nested/b.bin", 1024)]

    out = tmp_path / "out"
    out.mkdir()
    p = client.download_artifacts(rid, "hello.txt", str(out))
    assert Path(p).read_text() == "hello world\n"
    p = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="data", dst_path=str(out))
    assert (Path(p) / "a.csv").read_text() == "x,y\n1,2\n"
    assert (Path(p) / "nested" / "b.bin").read_bytes() == bytes(range(256)) * 4
    p = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="space name ü.txt", dst_path=str(out))
    assert Path(p).read_text(encoding="utf-8") == "unicode name\n"

    assert mlflow.artifacts.load_dict(f"runs:/{rid}/conf/params.json") == {"a": 1, "b": [1, 2]}
    assert mlflow.artifacts.load_text(f"runs:/{rid}/notes.txt") == "some text"
    assert mlflow.artifacts.load_text(f"runs:/{rid}/sub/dir/hello.txt") == "hello world\n"

    # the whole run folder
    whole = Path(mlflow.artifacts.download_artifacts(run_id=rid, dst_path=str(tmp_path / "all")))
    got = sorted(str(p.relative_to(whole)) for p in whole.rglob("*") if p.is_file())
    assert got == sorted([
        "hello.txt", "sub/dir/hello.txt", "data/a.csv", "data/nested/b.bin",
        "conf/params.json", "notes.txt", "space name ü.txt",
    ])


def test_large_binary_round_trip(client, experiment_id, tmp_path):
    blob = os.urandom(6 * 1024 * 1024 + 17)
    f = tmp_path / "big.bin"
    f.write_bytes(blob)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(f), "blobs")
    (info,) = client.list_artifacts(run.info.run_id, "blobs")
    assert info.file_size == len(blob)
    p = client.download_artifacts(run.info.run_id, "blobs/big.bin", str(tmp_path))
    assert Path(p).read_bytes() == blob


def test_overwrite_artifact(client, experiment_id, tmp_path):
    with mlflow.start_run() as run:
        mlflow.log_text("v1", "x.txt")
        mlflow.log_text("version two", "x.txt")
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/x.txt") == "version two"


def test_empty_run_lists_nothing(client, experiment_id):
    run = client.create_run(experiment_id)
    assert client.list_artifacts(run.info.run_id) == []


def test_raw_routes_put_get_list_delete(server, client, experiment_id):
    run = client.create_run(experiment_id)
    base = f"{server.url}{ART}/{rel_root(run)}"
    r = requests.put(f"{base}/raw/one.txt", data=b"one", timeout=10)
    assert r.status_code == 200, r.text
    r = requests.put(f"{base}/raw/two.txt", data=b"two!", timeout=10)
    assert r.status_code == 200, r.text

    r = requests.get(f"{base}/raw/one.txt", timeout=10)
    assert r.status_code == 200 and r.content == b"one"

    r = requests.get(f"{server.url}{ART}", params={"path": f"{rel_root(run)}/raw"}, timeout=10)
    assert r.status_code == 200, r.text
    listed = {f["path"]: f for f in r.json()["files"]}
    assert set(listed) == {"one.txt", "two.txt"}  # names relative to the listed folder
    assert listed["two.txt"]["file_size"] == 4 and listed["two.txt"]["is_dir"] is False

    r = requests.get(f"{server.url}{ART}", params={"path": rel_root(run)}, timeout=10)
    assert r.json()["files"] == [{"path": "raw", "is_dir": True}]

    r = requests.delete(f"{base}/raw/one.txt", timeout=10)
    assert r.status_code == 200, r.text
    assert requests.get(f"{base}/raw/one.txt", timeout=10).status_code == 404
    assert [f.path for f in client.list_artifacts(run.info.run_id, "raw")] == ["raw/two.txt"]

    # deleting a folder removes its content
    r = requests.delete(f"{base}/raw", timeout=10)
    assert r.status_code == 200, r.text
    assert client.list_artifacts(run.info.run_id) == []


def test_get_missing_artifact_is_404(server, client, experiment_id):
    run = client.create_run(experiment_id)
    r = requests.get(f"{server.url}{ART}/{rel_root(run)}/nope.txt", timeout=10)
    assert r.status_code == 404


def test_list_of_missing_folder_is_empty(server, client, experiment_id):
    run = client.create_run(experiment_id)
    r = requests.get(f"{server.url}{ART}", params={"path": f"{rel_root(run)}/nowhere"}, timeout=10)
    assert r.status_code == 200
    assert r.json().get("files", []) == []


def test_tracking_artifacts_list_endpoint(server, client, experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_text("x", "d/f.txt")
        mlflow.log_text("y", "top.txt")
    r = requests.get(f"{server.url}{API}/artifacts/list", params={"run_id": run.info.run_id}, timeout=10)
    assert r.status_code == 200, r.text
    files = {f["path"]: f for f in r.json()["files"]}
    assert set(files) == {"d", "top.txt"} and files["d"]["is_dir"]
    r = requests.get(f"{server.url}{API}/artifacts/list", params={"run_id": run.info.run_id, "path": "d"}, timeout=10)
    assert [f["path"] for f in r.json()["files"]] == ["d/f.txt"]


def test_server_info(server):
    r = requests.get(f"{server.url}/api/3.0/mlflow/server-info", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, dict)
    # the client must not try cloud multipart uploads against us
    assert body.get("multipart_uploads_enabled", False) is False


def test_artifacts_land_under_data_dir(server, client, experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_text("on disk", "where/am/i.txt")
    p = server.artifact_root / rel_root(run) / "where" / "am" / "i.txt"
    assert p.read_text() == "on disk"


@pytest.mark.skipif(__import__("conftest").REFERENCE, reason="Atelier-only flag --max-artifact-bytes")
def test_upload_over_size_limit_is_413_and_not_stored(tmp_path):
    from conftest import start_server

    srv = start_server(tmp_path / "data", ["--max-artifact-bytes", "1000"])
    try:
        c = mlflow.MlflowClient(srv.url)
        run = c.create_run("0")
        base = f"{srv.url}{ART}/{rel_root(run)}"
        r = requests.put(f"{base}/small.bin", data=b"x" * 1000, timeout=10)
        assert r.status_code == 200, r.text
        r = requests.put(f"{base}/big.bin", data=b"x" * 5000, timeout=10)
        assert r.status_code == 413, f"{r.status_code} {r.text[:200]}"
        assert requests.get(f"{base}/big.bin", timeout=10).status_code == 404
        assert [f.path for f in c.list_artifacts(run.info.run_id)] == ["small.bin"]
    finally:
        srv.stop()
