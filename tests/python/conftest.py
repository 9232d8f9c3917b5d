"""Fixtures for the MLflow-compatibility suite.

The suite drives a real Atelier server with the real `mlflow` client (see requirements.txt).

    cargo build -p atelier
    python -m pytest tests/python -q            # from the repository root

Environment:
  ATELIER_BIN             the binary to test (default: target/debug/atelier)
  ATELIER_SKINNY_PYTHON   a python with mlflow-skinny==3.17.2 installed (test_skinny.py; skipped if unset)
  ATELIER_TEST_REFERENCE  set to "mlflow" to run the suite against a real `mlflow server`
                          (sqlite + --artifacts-destination <data-dir>/artifacts) instead of Atelier.
                          This checks the tests themselves against MLflow's behaviour; Atelier-only
                          tests (auth) skip in that mode.

Every test that uses `server` gets a server shared by its module (fresh data dir per module);
`fresh_server` starts one per test where isolation matters. An autouse check fails any test during
which the server answered a 5xx (the mlflow client retries those for minutes, so bad input must be 4xx).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = os.environ.get("ATELIER_TEST_REFERENCE", "").lower() == "mlflow"

# The client reads these per request. Without them a 5xx is retried 7 times with backoff 2.
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "20"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
os.environ.pop("MLFLOW_EXPERIMENT_ID", None)

import mlflow  # noqa: E402  (after the env set-up above)


def atelier_bin() -> Path:
    p = Path(os.environ.get("ATELIER_BIN", "target/debug/atelier"))
    return p if p.is_absolute() else REPO_ROOT / p


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Server:
    url: str
    port: int
    data_dir: Path
    proc: subprocess.Popen
    stdout_path: Path
    stderr_path: Path
    kind: str  # "atelier" or "mlflow"

    @property
    def artifact_root(self) -> Path:
        return self.data_dir / "artifacts"

    def logs(self) -> str:
        out = self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""
        err = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-8000:]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def run_cli(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    """Run the atelier binary with `args` (e.g. ["token", "create", "ci", "--data-dir", d])."""
    binary = atelier_bin()
    if not binary.exists():
        pytest.fail(f"atelier binary not found at {binary}; run `cargo build -p atelier` or set ATELIER_BIN")
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)


def start_server(data_dir: Path, extra_args: list[str] | None = None, ready_statuses=(200,),
                 binary: Path | None = None) -> Server:
    """Start a server on a free loopback port and wait until GET /health answers.

    `binary` replaces ATELIER_BIN (the wheel test serves with the binary pip installed)."""
    import requests

    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # beside the data folder, so pytest's own clean-up of its temporary folders takes the logs too
    log_dir = Path(tempfile.mkdtemp(prefix="atelier-log-", dir=data_dir.parent))
    stdout_path, stderr_path = log_dir / "stdout", log_dir / "stderr"
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_TOKEN", None)
    for k in ("ATELIER_HOST", "ATELIER_PORT", "ATELIER_DATA_DIR", "ATELIER_REQUIRE_AUTH", "ATELIER_CONFIG"):
        env.pop(k, None)
    if REFERENCE:
        (data_dir / "artifacts").mkdir(exist_ok=True)
        cmd = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{data_dir}/mlflow.db",
            "--artifacts-destination", str(data_dir / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ]
        deadline_s = 60.0
        kind = "mlflow"
    else:
        binary = binary or atelier_bin()
        if not binary.exists():
            pytest.fail(f"atelier binary not found at {binary}; run `cargo build -p atelier` or set ATELIER_BIN")
        cmd = [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
               *(extra_args or [])]
        deadline_s = 20.0
        kind = "atelier"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=data_dir)
    srv = Server(f"http://127.0.0.1:{port}", port, data_dir, proc, stdout_path, stderr_path, kind)
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with code {proc.returncode} before answering /health\n{srv.logs()}")
        try:
            r = requests.get(f"{srv.url}/health", timeout=2)
            last = r.status_code
            if r.status_code in ready_statuses:
                return srv
        except requests.RequestException as e:
            last = repr(e)
        time.sleep(0.1)
    srv.stop()
    pytest.fail(f"server did not answer GET /health with {ready_statuses} within {deadline_s:.0f} s "
                f"(last: {last})\ncommand: {cmd}\n{srv.logs()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("data"))
    yield srv
    srv.stop()
    if srv.proc.returncode not in (0, -15, 143, None) and srv.kind == "atelier":
        print(f"server exited with {srv.proc.returncode}\n{srv.logs()}")


@pytest.fixture
def fresh_server(tmp_path):
    srv = start_server(tmp_path / "data")
    mlflow.set_tracking_uri(srv.url)
    yield srv
    srv.stop()


# ---------------------------------------------------------------------------------------------
# Per-test client set-up and the "no 5xx anywhere" check.

from _helpers import FIVE_XX as _FIVE_XX  # noqa: E402


def _install_5xx_recorder() -> None:
    """Record every HTTP exchange (requests/urllib3, so both the mlflow client and raw calls)
    that came back with a 5xx status."""
    from urllib3.connectionpool import HTTPConnectionPool

    if getattr(HTTPConnectionPool._make_request, "_atelier_wrapped", False):
        return
    orig = HTTPConnectionPool._make_request

    def _make_request(self, conn, method, url, *args, **kwargs):
        resp = orig(self, conn, method, url, *args, **kwargs)
        try:
            status = resp.status
        except Exception:  # pragma: no cover
            status = 0
        if status >= 500:
            _FIVE_XX.append(f"{method} {self.host}:{self.port}{url} -> {status}")
        return resp

    _make_request._atelier_wrapped = True
    HTTPConnectionPool._make_request = _make_request


_install_5xx_recorder()


@pytest.fixture(autouse=True)
def _client_and_5xx_guard(request):
    _FIVE_XX.clear()
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        mlflow.set_tracking_uri(srv.url)
    yield
    with contextlib.suppress(Exception):
        while mlflow.active_run() is not None:
            mlflow.end_run()
    seen = list(_FIVE_XX)
    _FIVE_XX.clear()
    if seen:
        pytest.fail("server answered 5xx during this test:\n  " + "\n  ".join(seen[:20]), pytrace=False)


@pytest.fixture
def client(server):
    return mlflow.MlflowClient(tracking_uri=server.url)


@pytest.fixture
def experiment_id(client, request):
    """A fresh experiment for the test, also made the active one for the fluent API."""
    import uuid

    name = f"{request.node.name[:60]}-{uuid.uuid4().hex[:8]}"
    exp = mlflow.set_experiment(name)
    return exp.experiment_id


def pytest_report_header(config):
    target = "real mlflow server (reference mode)" if REFERENCE else f"atelier binary {atelier_bin()}"
    return [f"atelier compat suite against: {target}", f"mlflow client {mlflow.__version__}"]


@pytest.fixture
def outside_dir():
    """A directory outside every server's data dir, for path-traversal canaries."""
    d = Path(tempfile.mkdtemp(prefix="atelier-outside-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "mlflow_deviates(reason): Atelier must do better than MLflow here; xfail in reference mode only",
    )


def pytest_collection_modifyitems(config, items):
    if not REFERENCE:
        return
    for item in items:
        m = item.get_closest_marker("mlflow_deviates")
        if m is not None:
            reason = m.args[0] if m.args else "MLflow deviates"
            item.add_marker(pytest.mark.xfail(reason=f"real MLflow: {reason}", strict=False))


def with_database(server_url: str, name: str) -> str:
    """A PostgreSQL URL naming another database on the same server (query string kept)."""
    head, _, rest = server_url.partition("://")
    hostpart, _, tail = rest.partition("/")
    query = ("?" + tail.split("?", 1)[1]) if "?" in tail else ""
    return f"{head}://{hostpart}/{name}{query}"
