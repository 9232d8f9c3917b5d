"""Path traversal against the artifact routes: every attempt is a 400, nothing outside the artifact
root is read, written or deleted, and the server never answers 5xx.

`requests` normalises literal `..` segments away (urllib3 removes dot segments), so literal ones go
through `http.client`, which sends the request target as given.
"""

import http.client
import os
from pathlib import Path

import mlflow
import pytest
import requests

from _helpers import record_5xx

ART = "/api/2.0/mlflow-artifacts/artifacts"
SECRET = "TOP-SECRET-CANARY-7f3a"


@pytest.fixture(scope="module")
def target(server, tmp_path_factory):
    """A run with one artifact, and a secret file + folder outside the data dir."""
    mlflow.set_tracking_uri(server.url)
    c = mlflow.MlflowClient(server.url)
    exp = c.create_experiment("traversal")
    run = c.create_run(exp)
    c.log_text(run.info.run_id, "inside", "ok.txt")
    rel = run.info.artifact_uri[len("mlflow-artifacts:/"):].lstrip("/")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.txt").write_text(SECRET)
    run_dir = server.artifact_root / rel
    assert (run_dir / "ok.txt").read_text() == "inside", "artifacts must live under <data-dir>/artifacts/<exp>/<run>/artifacts"
    # from the run's artifact folder up to the filesystem root, then down to the secret
    up = "../" * len(run_dir.resolve().parts[1:])
    return {"client": c, "run": run, "rel": rel, "outside": outside, "run_dir": run_dir, "up": up}


def raw_request(server, method, target_path, body=None):
    """Send `target_path` byte-for-byte (no normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest(method, target_path, skip_accept_encoding=True)
        data = body or b""
        if method in ("PUT", "POST"):
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders()
        if data:
            conn.send(data)
        resp = conn.getresponse()
        content = resp.read()
        if resp.status >= 500:
            record_5xx(f"{method} {target_path} -> {resp.status} (http.client)")
        return resp.status, content
    finally:
        conn.close()


def assert_rejected(status, content, what):
    assert status < 500, f"{what}: server error {status}"
    assert SECRET.encode() not in content, f"{what}: leaked the secret!"
    assert b"root:" not in content, f"{what}: leaked /etc/passwd!"
    assert status == 400, f"{what}: expected 400, got {status}: {content[:200]!r}"


def traversal_paths(t):
    rel, up = t["rel"], t["up"]
    secret_abs = str(t["outside"] / "secret.txt").lstrip("/")
    return {
        "dotdot-to-secret": f"{rel}/{up}{secret_abs}",
        "dotdot-etc-passwd": f"{rel}/../../../../../../../../etc/passwd",
        "dotdot-at-start": "../../../../../../etc/passwd",
        "dotdot-into-other-run": f"{rel}/../../other/artifacts/x.txt",
        "encoded-dotdot": f"{rel}/" + "%2e%2e/" * 12 + "etc/passwd",
        "encoded-dotdot-upper": f"{rel}/" + "%2E%2E/" * 12 + "etc/passwd",
        "encoded-slash": f"{rel}/" + "..%2f" * 12 + "etc%2fpasswd",
        "double-encoded-dotdot": f"{rel}/" + "%252e%252e/" * 12 + "etc/passwd",
        "double-encoded-slash": f"{rel}/" + "..%252f" * 12 + "etc/passwd",
        "absolute-double-slash": "/etc/passwd",
        "absolute-encoded": "%2fetc%2fpasswd",
        "backslash": f"{rel}/" + "..\\" * 12 + "etc\\passwd",
        "backslash-encoded": f"{rel}/" + "..%5c" * 12 + "etc%5cpasswd",
    }


_POSIX_BACKSLASH = pytest.mark.mlflow_deviates(
    "on Linux MLflow treats a backslash as a file-name character (a file named '..\\..\\x' inside the run)"
)
CASES = [
    "dotdot-to-secret", "dotdot-etc-passwd", "dotdot-at-start", "dotdot-into-other-run", "encoded-dotdot",
    "encoded-dotdot-upper", "encoded-slash", "double-encoded-dotdot", "double-encoded-slash",
    "absolute-double-slash", "absolute-encoded",
    pytest.param("backslash", marks=_POSIX_BACKSLASH),
    pytest.param("backslash-encoded", marks=_POSIX_BACKSLASH),
]


@pytest.mark.parametrize("case", CASES)
def test_get_traversal_is_400(server, target, case):
    p = traversal_paths(target)[case]
    status, content = raw_request(server, "GET", f"{ART}/{p}")
    assert_rejected(status, content, f"GET {case}")


@pytest.mark.parametrize("case", CASES)
def test_put_traversal_is_400_and_writes_nothing(server, target, case):
    outside = target["outside"]
    before = sorted(os.listdir(outside))
    p = traversal_paths(target)[case]
    # aim writes at the outside folder too
    p = p.replace("etc/passwd", "pwned.txt").replace("secret.txt", "pwned.txt")
    status, content = raw_request(server, "PUT", f"{ART}/{p}", body=b"pwned")
    assert_rejected(status, content, f"PUT {case}")
    assert sorted(os.listdir(outside)) == before
    assert not Path("/etc/pwned.txt").exists() and not Path("/pwned.txt").exists()


@pytest.mark.parametrize(
    "case",
    ["dotdot-to-secret", "encoded-dotdot", "double-encoded-dotdot", pytest.param("backslash", marks=_POSIX_BACKSLASH)],
)
def test_delete_traversal_is_400_and_deletes_nothing(server, target, case):
    p = traversal_paths(target)[case].replace("etc/passwd", "secret.txt")
    status, content = raw_request(server, "DELETE", f"{ART}/{p}")
    assert_rejected(status, content, f"DELETE {case}")
    assert (target["outside"] / "secret.txt").read_text() == SECRET


@pytest.mark.parametrize(
    "path",
    [
        "../..", "../../../../../../etc", "/etc", "%2e%2e/%2e%2e", "%252e%252e/%252e%252e", "1/../../..",
        pytest.param("..\\..", marks=_POSIX_BACKSLASH),
    ],
)
def test_list_traversal_is_400(server, target, path):
    r = requests.get(f"{server.url}{ART}", params={"path": path}, timeout=10)
    assert r.status_code < 500
    assert b"passwd" not in r.content and SECRET.encode() not in r.content
    assert r.status_code == 400, f"list path={path!r}: {r.status_code} {r.text[:200]}"


def test_requests_encoded_traversal_is_400(server, target):
    """The same attacks through `requests`, which keeps percent-encoded dots as they are."""
    rel = target["rel"]
    for p in [f"{rel}/" + "%2e%2e/" * 12 + "etc/passwd", f"{rel}/" + "%252e%252e/" * 12 + "etc/passwd"]:
        r = requests.get(f"{server.url}{ART}/{p}", timeout=10)
        assert_rejected(r.status_code, r.content, p)


def test_tracking_list_endpoint_traversal_is_400(server, target):
    run_id = target["run"].info.run_id
    r = requests.get(
        f"{server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": "../../.."}, timeout=10
    )
    assert r.status_code == 400, r.text
    assert b"secret" not in r.content


@pytest.fixture
def planted(target):
    """A symlink to a file and one to a folder, planted inside the run's artifact folder on disk."""
    run_dir, outside = target["run_dir"], target["outside"]
    links = [run_dir / "link.txt", run_dir / "linkdir"]
    (outside / "secret.txt").write_text(SECRET)
    (run_dir / "link.txt").symlink_to(outside / "secret.txt")
    (run_dir / "linkdir").symlink_to(outside, target_is_directory=True)
    yield target
    for link in links:
        if link.is_symlink():
            link.unlink()


def test_symlink_to_file_outside_is_not_followed(server, planted):
    rel = planted["rel"]
    r = requests.get(f"{server.url}{ART}/{rel}/link.txt", timeout=10)
    assert_rejected(r.status_code, r.content, "GET symlinked file")
    r = requests.get(f"{server.url}{ART}/{rel}/linkdir/secret.txt", timeout=10)
    assert_rejected(r.status_code, r.content, "GET through symlinked folder")


def test_symlinked_folder_cannot_be_listed(server, planted):
    r = requests.get(f"{server.url}{ART}", params={"path": f"{planted['rel']}/linkdir"}, timeout=10)
    assert r.status_code == 400, r.text
    assert b"secret" not in r.content


def test_symlinked_folder_cannot_be_written(server, planted):
    rel, outside = planted["rel"], planted["outside"]
    r = requests.put(f"{server.url}{ART}/{rel}/linkdir/pwned.txt", data=b"pwned", timeout=10)
    assert r.status_code == 400, r.text
    assert not (outside / "pwned.txt").exists()
    r = requests.put(f"{server.url}{ART}/{rel}/link.txt", data=b"overwrite", timeout=10)
    assert r.status_code == 400, r.text
    assert (outside / "secret.txt").read_text() == SECRET


@pytest.mark.mlflow_deviates("MLflow 3.17.2 follows the symlink and deletes the file outside the artifact root")
def test_symlinked_folder_cannot_be_deleted_through(server, planted):
    rel, outside = planted["rel"], planted["outside"]
    r = requests.delete(f"{server.url}{ART}/{rel}/linkdir/secret.txt", timeout=10)
    assert r.status_code == 400, r.text
    assert (outside / "secret.txt").read_text() == SECRET


def test_client_download_through_symlink_fails(server, planted, tmp_path):
    with pytest.raises(Exception):
        mlflow.artifacts.download_artifacts(
            run_id=planted["run"].info.run_id, artifact_path="link.txt", dst_path=str(tmp_path)
        )
    assert not any(SECRET in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())


def test_normal_artifact_still_served(server, target):
    r = requests.get(f"{server.url}{ART}/{target['rel']}/ok.txt", timeout=10)
    assert r.status_code == 200 and r.text == "inside"
