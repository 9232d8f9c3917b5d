"""mlflow-skinny (the client most training containers ship) against the server, in its own venv.

Set ATELIER_SKINNY_PYTHON to a python that has `mlflow-skinny==3.17.2` (and not full mlflow):
    python -m venv /tmp/skinny && /tmp/skinny/bin/pip install mlflow-skinny==3.17.2
    ATELIER_SKINNY_PYTHON=/tmp/skinny/bin/python python -m pytest tests/python/test_skinny.py
"""

import os
import subprocess
from pathlib import Path

import pytest

SKINNY = os.environ.get("ATELIER_SKINNY_PYTHON")
SCENARIO = Path(__file__).with_name("skinny_scenario.py")


@pytest.mark.skipif(not SKINNY, reason="set ATELIER_SKINNY_PYTHON to a python with mlflow-skinny==3.17.2")
def test_skinny_client_scenario(server):
    probe = subprocess.run(
        [SKINNY, "-c", "import mlflow, importlib.metadata as m; print(m.version('mlflow-skinny'))"],
        capture_output=True, text=True, timeout=60,
    )
    assert probe.returncode == 0, f"ATELIER_SKINNY_PYTHON cannot import mlflow:\n{probe.stderr}"
    assert probe.stdout.strip() == "3.17.2", f"expected mlflow-skinny 3.17.2, found {probe.stdout.strip()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    res = subprocess.run([SKINNY, str(SCENARIO), server.url], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0 and "SKINNY-OK" in res.stdout, (
        f"skinny scenario failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}\n{server.logs()}"
    )
