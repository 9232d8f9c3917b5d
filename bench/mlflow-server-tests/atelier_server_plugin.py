"""pytest plugin: point MLflow's own server tests at `atelier serve`.

Loaded with `-p atelier_server_plugin` (run.sh puts this folder on PYTHONPATH).
MLflow's test bodies are not touched: after collection, every helper that starts
an MLflow server is replaced, in tests.tracking.integration_test_utils and in each
test module that imported it, by one that starts a fresh `atelier serve` on
127.0.0.1 with a fresh --data-dir (one server per fixture call, as MLflow's own
fixtures do):

- `_init_server(backend_uri, root_artifact_uri, ...)`: context manager yielding the
  URL (MLflow 2.x/3.x), or a function returning (url, process) (older versions);
- `ServerThread(app, port)`: in-process FastAPI server used by e.g. the webhook
  tests; replaced by a context manager yielding the URL of atelier on that port;
- `_launch_server(...)` in test_mlflow_artifacts.py: returns a Popen of atelier
  on the host/port it was given.

Settings (environment): ATELIER_BIN (path of the binary, required),
ATELIER_TEST_LOG (log filter, default "warn").
"""

import contextlib
import inspect
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

_BIN = os.environ.get("ATELIER_BIN")
_HOST = "127.0.0.1"


def _free_port():
    with socket.socket() as s:
        s.bind((_HOST, 0))
        return s.getsockname()[1]


def _wait_up(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"atelier serve exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((_HOST, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"atelier serve not listening on {_HOST}:{port} after {timeout}s")


def start_atelier(port=None):
    """Start `atelier serve` with a fresh data dir; returns (url, process, data_dir)."""
    if not _BIN:
        raise RuntimeError("ATELIER_BIN is not set")
    port = int(port) if port else _free_port()
    data_dir = tempfile.mkdtemp(prefix="atelier-mlflow-tests-")
    cmd = [
        _BIN, "serve",
        "--host", _HOST,
        "--port", str(port),
        "--data-dir", data_dir,
        "--webhook-allowed-hosts", "127.0.0.1,localhost",
        "--job-workers", "1",
        "--log", os.environ.get("ATELIER_TEST_LOG", "warn"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    proc = subprocess.Popen(cmd, env=env, stdout=sys.stderr, stderr=sys.stderr)
    proc._atelier_data_dir = data_dir  # cleaned up in stop_atelier
    try:
        _wait_up(port, proc)
    except Exception:
        stop_atelier(proc)
        raise
    return f"http://{_HOST}:{port}", proc, data_dir


def stop_atelier(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shutil.rmtree(getattr(proc, "_atelier_data_dir", ""), ignore_errors=True)


def _is_context_manager(fn):
    wrapped = getattr(fn, "__wrapped__", None)
    return wrapped is not None and inspect.isgeneratorfunction(wrapped)


def _make_init_server(orig):
    import mlflow

    if _is_context_manager(orig):

        @contextlib.contextmanager
        def _init_server(*args, **kwargs):
            mlflow.set_tracking_uri(None)
            url, proc, _ = start_atelier()
            try:
                yield url
            finally:
                stop_atelier(proc)

        return _init_server

    def _init_server(*args, **kwargs):
        mlflow.set_tracking_uri(None)
        url, proc, _ = start_atelier()
        return url, proc

    return _init_server


class AtelierServerThread:
    """Stands in for tests.tracking.integration_test_utils.ServerThread(app, port)."""

    def __init__(self, app=None, port=None, *args, **kwargs):
        self.port = port
        self.proc = None

    def __enter__(self):
        url, self.proc, _ = start_atelier(self.port)
        return url

    def __exit__(self, *exc):
        stop_atelier(self.proc)
        return False

    # some versions call start()/stop() directly
    def start(self):
        return self.__enter__()

    def stop(self):
        self.__exit__(None, None, None)


def _make_launch_server(orig):
    sig = inspect.signature(orig)

    def _launch_server(*args, **kwargs):
        bound = sig.bind_partial(*args, **kwargs).arguments
        port = bound.get("port")
        _url, proc, _ = start_atelier(port)
        return proc

    return _launch_server


def _patch_modules():
    patched = []
    for name, mod in list(sys.modules.items()):
        if not name.startswith("tests.") or mod is None:
            continue
        fn = getattr(mod, "_init_server", None)
        if callable(fn) and not getattr(fn, "_atelier", False):
            new = _make_init_server(fn)
            new._atelier = True
            mod._init_server = new
            patched.append(f"{name}._init_server")
        if isinstance(getattr(mod, "ServerThread", None), type) and mod.ServerThread is not AtelierServerThread:
            mod.ServerThread = AtelierServerThread
            patched.append(f"{name}.ServerThread")
        fn = getattr(mod, "_launch_server", None)
        if callable(fn) and not getattr(fn, "_atelier", False) and name.endswith("test_mlflow_artifacts"):
            new = _make_launch_server(fn)
            new._atelier = True
            mod._launch_server = new
            patched.append(f"{name}._launch_server")
    return patched


def pytest_collection_finish(session):
    patched = _patch_modules()
    session.config._atelier_patched = patched
    print("\natelier_server_plugin patched: " + ", ".join(patched), file=sys.stderr)


def pytest_report_header(config):
    return f"server under test: atelier serve ({_BIN})"
