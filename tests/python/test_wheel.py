"""The pip path: the wheel `cargo xtask wheel` builds installs into a fresh venv and serves.

Set ATELIER_WHEEL to the wheel (`cargo xtask test` builds one and sets it):
    cargo xtask wheel            # prints target/wheels/atelier_studio-<version>-py3-none-<platform>.whl
    ATELIER_WHEEL=target/wheels/atelier_studio-...whl python -m pytest tests/python/test_wheel.py

The venv gets the wheel alone (no index, no Rust toolchain on its PATH); the run is logged by the
`mlflow` client of the test venv, as a user's training script would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import mlflow
import pytest

from conftest import start_server

WHEEL = os.environ.get("ATELIER_WHEEL")

pytestmark = pytest.mark.skipif(not WHEEL, reason="set ATELIER_WHEEL to a wheel built by `cargo xtask wheel`")


def _cargo_version() -> str:
    text = (Path(__file__).resolve().parents[2] / "crates/atelier/Cargo.toml").read_text()
    for line in text.splitlines():
        if line.startswith("version"):
            return line.split('"')[1]
    raise AssertionError("no version in crates/atelier/Cargo.toml")


def test_wheel_carries_the_binary_and_its_metadata():
    wheel = Path(WHEEL)
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        scripts = [n for n in names if n.endswith(".data/scripts/atelier")]
        assert scripts, f"no atelier executable in the wheel: {names}"
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    assert "Name: atelier-studio" in text
    assert f"Version: {_cargo_version()}" in text
    # the binary's permission bits survive, or pip would install a file that cannot be run
    with zipfile.ZipFile(wheel) as z:
        mode = z.getinfo(scripts[0]).external_attr >> 16
    assert mode & 0o111, f"atelier in the wheel is not executable (mode {oct(mode)})"


def test_pip_install_then_serve_then_log_a_run_with_mlflow(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # pip of the test venv installs into the fresh one: nothing but the wheel, no index
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install", "--no-index",
         "--no-deps", "--disable-pip-version-check", "-q", WHEEL],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, f"pip install failed:\n{r.stdout}\n{r.stderr}"
    atelier = venv / "bin/atelier"
    assert atelier.exists(), f"pip put no atelier in {venv / 'bin'}: {sorted(os.listdir(venv / 'bin'))}"

    # on a PATH with the venv and the system only: no cargo, no repository binary
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    v = subprocess.run(["atelier", "--version"], capture_output=True, text=True, env=env, timeout=30)
    assert v.returncode == 0, v.stderr
    assert v.stdout.strip() == f"atelier {_cargo_version()}"

    srv = start_server(tmp_path / "data", binary=atelier)
    try:
        mlflow.set_tracking_uri(srv.url)
        mlflow.set_experiment("from-the-wheel")
        with mlflow.start_run() as run:
            mlflow.log_param("installed_with", "pip")
            mlflow.log_metric("auc", 0.91)
        got = mlflow.MlflowClient(srv.url).get_run(run.info.run_id)
        assert got.data.params == {"installed_with": "pip"}
        assert got.data.metrics == {"auc": 0.91}
        assert got.info.status == "FINISHED"
        # the Studio's pages and assets are inside the binary, not beside a source tree
        import requests
        page = requests.get(f"{srv.url}/", timeout=10)
        assert page.status_code == 200 and "Atelier" in page.text
    finally:
        srv.stop()
