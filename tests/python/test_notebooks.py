"""Notebooks: notebook jobs on a real ipykernel with papermill's conventions (compared with
papermill's own output on the same notebook), the mlflow client inside the kernel, previews,
bad notebooks, and schedules that fire on their cron and tell webhooks when a run fails.

The server runs with --notebook-python set to this Python (tests/python/requirements.txt holds
ipykernel, papermill and nbformat).
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
import requests
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from _helpers import unique
from conftest import atelier_bin, start_server

RUNS = "/api/atelier/notebooks/runs"


def api_get(server, path: str, params=None) -> requests.Response:
    return requests.get(f"{server.url}{path}", params=params, timeout=20)


def api_post(server, path: str, body=None) -> requests.Response:
    return requests.post(f"{server.url}{path}", json=body, timeout=60)


@pytest.fixture(scope="module")
def nb_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("nbdata")
    s = start_server(
        data,
        ["--notebook-python", sys.executable, "--webhook-allowed-hosts", "127.0.0.1", "--job-workers", "3"],
    )
    yield s
    s.stop()


def notebook(*cells, kernel="python3") -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = list(cells)
    return nb


def params_cell(src: str):
    c = new_code_cell(src)
    c.metadata["tags"] = ["parameters"]
    return c


def analysis() -> nbformat.NotebookNode:
    return notebook(
        new_markdown_cell("# Analysis\nScores a run."),
        params_cell("alpha = 0.1\nepochs = 1\nlabel = 'base'"),
        new_code_cell("import mlflow\nscore = alpha * epochs\nmlflow.log_metric('score', score)\nprint('score', score, label)"),
        new_code_cell("score * 2"),
    )


def write(tmp: Path, name: str, nb) -> Path:
    p = tmp / name
    nbformat.write(nb, str(p))
    return p


def wait_job(server, job_id: str, timeout: float = 120) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        j = api_get(server, f"/api/atelier/jobs/{job_id}").json()["job"]
        if j["status"] in ("succeeded", "failed", "cancelled"):
            return j
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {j}\n{server.logs()}")


def cli(server, *args, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(atelier_bin()), "notebooks", "run", *args, "--server", server.url],
        capture_output=True, text=True, timeout=timeout,
    )


def papermill(server, src: Path, out: Path, *params: str) -> subprocess.CompletedProcess:
    """papermill on the same notebook; its kernel logs to the test server (not to ./mlflow.db)."""
    args = [sys.executable, "-m", "papermill", str(src), str(out), "-k", "python3"]
    for p in params:
        k, v = p.split("=", 1)
        args += ["-p", k, v]
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
    return subprocess.run(args, capture_output=True, text=True, timeout=180, cwd=src.parent, env=env)


def pm_keys(nb) -> tuple:
    """The shape of papermill's metadata: notebook keys, per-cell keys, statuses and tags."""
    cells = [
        (
            c["cell_type"],
            tuple(sorted(c["metadata"].get("papermill", {}).keys())),
            c["metadata"].get("papermill", {}).get("status"),
            tuple(c["metadata"].get("tags", [])),
            tuple(sorted(c["metadata"].get("execution", {}).keys())),
        )
        for c in nb["cells"]
    ]
    return tuple(sorted(nb["metadata"]["papermill"].keys())), cells


def test_a_notebook_job_with_parameters_logs_to_its_run_and_matches_papermill(nb_server, tmp_path):
    src = write(tmp_path, "analysis.ipynb", analysis())
    out = tmp_path / "out.ipynb"
    r = cli(nb_server, str(src), "-p", "alpha=0.5", "-p", "epochs=3", "-p", "label=tuned", "--output", str(out))
    assert r.returncode == 0, r.stdout + r.stderr + nb_server.logs()
    # the cell's stdout is in the job's log, followed by the CLI
    assert "score 1.5 tuned" in r.stdout
    got = nbformat.read(str(out), as_version=4)
    nbformat.validate(got)
    injected = [c for c in got.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert injected[0].source == "# Parameters\nalpha = 0.5\nepochs = 3\nlabel = \"tuned\"\n"
    assert got.cells[got.cells.index(injected[0]) - 1].metadata["tags"] == ["parameters"]
    assert got.metadata.papermill["parameters"] == {"alpha": 0.5, "epochs": 3, "label": "tuned"}
    assert got.cells[-1].outputs[0]["data"]["text/plain"] == "3.0"
    # papermill on the same notebook with the same parameters: the same metadata shape
    ref = tmp_path / "papermill.ipynb"
    p = papermill(nb_server, src, ref, "alpha=0.5", "epochs=3", "label=tuned")
    assert p.returncode == 0, p.stderr
    ref_nb = nbformat.read(str(ref), as_version=4)
    assert pm_keys(got) == pm_keys(ref_nb)
    assert injected[0].source == [c for c in ref_nb.cells if "injected-parameters" in c.metadata.get("tags", [])][0].source
    # the metric the notebook logged is in the job's run, with the parameters as params
    jobs = api_get(nb_server, RUNS, params={"limit": 5}).json()["runs"]
    job = next(j for j in jobs if j["parameters"] == {"alpha": 0.5, "epochs": 3, "label": "tuned"})
    run = api_get(nb_server, "/api/2.0/mlflow/runs/get", params={"run_id": job["run_id"]}).json()["run"]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics["score"] == 1.5
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params == {"alpha": "0.5", "epochs": "3", "label": "tuned"}
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.source.type"] == "NOTEBOOK"
    assert run["info"]["status"] == "FINISHED"
    # the output notebook is the run's artifact and previews as a job output
    pv = api_get(nb_server, "/api/atelier/notebooks/preview", params={"source": f"job:{job['job_id']}"}).json()
    assert "injected parameters" in pv["html"] and "score 1.5 tuned" in pv["html"]
    assert pv["job"]["status"] == "succeeded"


def test_an_erroring_notebook_fails_the_job_with_papermills_banner(nb_server, tmp_path):
    nb = notebook(
        params_cell("n = 1"),
        new_code_cell("print('before')"),
        new_code_cell("1 / (n - 1)"),
        new_code_cell("print('never')"),
    )
    src = write(tmp_path, "broken.ipynb", nb)
    out = tmp_path / "broken-out.ipynb"
    r = cli(nb_server, str(src), "--output", str(out))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "ZeroDivisionError" in r.stderr
    got = nbformat.read(str(out), as_version=4)
    nbformat.validate(got)
    assert "papermill-error-cell-tag" in got.cells[0].metadata.get("tags", [])
    statuses = [c.metadata.get("papermill", {}).get("status") for c in got.cells if c.cell_type == "code"]
    assert statuses[-2:] == ["failed", "pending"]
    assert got.metadata.papermill["exception"] is True
    ref = tmp_path / "broken-papermill.ipynb"
    p = papermill(nb_server, src, ref)
    assert p.returncode != 0
    assert pm_keys(got) == pm_keys(nbformat.read(str(ref), as_version=4))
    job = api_get(nb_server, RUNS, params={"limit": 1}).json()["runs"][0]
    assert job["status"] == "failed"
    assert "ZeroDivisionError" in job["error"] and "cell" in job["error"]


def upload(server, path: Path) -> str:
    dest = f"notebook-uploads/{unique('t')}/{path.name}"
    r = requests.put(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{dest}", data=path.read_bytes(),
                     headers={"Content-Type": "application/octet-stream"}, timeout=20)
    assert r.status_code == 200, r.text
    return dest


def test_bad_notebooks_and_bad_requests_are_clear_4xx(nb_server, tmp_path):
    notjson = tmp_path / "notes.ipynb"
    notjson.write_text("this is not a notebook")
    r = api_post(nb_server, RUNS, {"source": upload(nb_server, notjson)})
    assert r.status_code == 400 and "not" in r.json()["message"] and "notebook" in r.json()["message"]
    v3 = tmp_path / "old.ipynb"
    v3.write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}))
    r = api_post(nb_server, RUNS, {"source": upload(nb_server, v3)})
    assert r.status_code == 400 and "3" in r.json()["message"], r.text
    good = upload(nb_server, write(tmp_path, "good.ipynb", analysis()))
    r = api_post(nb_server, RUNS, {"source": good, "kernel": "julia-1.9"})
    assert r.status_code == 400 and "python3" in r.json()["message"], r.text
    r = api_post(nb_server, RUNS, {"source": good, "parameters": {"alhpa": 1}})
    assert r.status_code == 202, r.text
    assert any("alhpa" in w for w in r.json()["warnings"])
    wait_job(nb_server, r.json()["job"]["id"])
    for body, want in [
        ({"source": "workspace:../../etc/passwd"}, ".."),
        ({"source": "workspace:missing.ipynb"}, "no file"),
        ({"source": good, "parameters": [1]}, "object"),
        ({"source": good, "colour": "red"}, "unknown field"),
        ({}, "source"),
    ]:
        r = api_post(nb_server, RUNS, body)
        assert 400 <= r.status_code < 500 and want in r.json()["message"], (body, r.text)
    r = api_get(nb_server, "/api/atelier/notebooks/preview", params={"source": "workspace:/etc/passwd"})
    assert r.status_code == 400


class Hook(http.server.BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):  # noqa: N802
        n = int(self.headers.get("Content-Length", "0"))
        Hook.got.append(json.loads(self.rfile.read(n)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_a_schedule_fires_on_its_cron_shows_its_runs_and_tells_failures(nb_server, tmp_path):
    ws = nb_server.data_dir / "workspaces" / "default"
    ws.mkdir(parents=True, exist_ok=True)
    nbformat.write(analysis(), str(ws / "nightly.ipynb"))
    nbformat.write(notebook(new_code_cell("raise ValueError('no data today')")), str(ws / "flaky.ipynb"))
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    try:
        r = api_post(nb_server, "/api/atelier/notebook-schedules",
                     {"name": "nightly", "source": "workspace:nightly.ipynb", "cron": "*/3 * * * * *",
                      "parameters": {"epochs": 2}})
        assert r.status_code == 200, r.text
        r = api_post(nb_server, "/api/atelier/notebook-schedules",
                     {"name": "flaky", "source": "workspace:flaky.ipynb", "cron": "*/3 * * * * *", "webhooks": [hook]})
        assert r.status_code == 200, r.text
        end = time.time() + 90
        while time.time() < end:
            s = api_get(nb_server, "/api/atelier/notebook-schedules/nightly").json()
            f = api_get(nb_server, "/api/atelier/notebook-schedules/flaky").json()
            done = [x for x in s["runs"] if x["status"] == "succeeded"]
            if done and f["status"] == "failing" and Hook.got:
                break
            time.sleep(0.5)
        assert done, s
        assert done[0]["parameters"] == {"epochs": 2} and done[0]["schedule"] == "nightly"
        assert f["status"] == "failing", f
        assert Hook.got and Hook.got[0]["event"] == "notebook_failed" and Hook.got[0]["schedule"] == "flaky"
        assert "no data today" in Hook.got[0]["error"]
        # the notebooks page lists the workspace notebook with its runs, and the schedules
        page = api_get(nb_server, "/api/atelier/notebooks").json()
        row = next(n for n in page["notebooks"] if n["path"] == "nightly.ipynb")
        assert row["runs"] and row["runs"][0]["schedule"] == "nightly"
        assert {x["name"] for x in page["schedules"]} >= {"nightly", "flaky"}
        assert any(k["name"] == "python3" for k in page["kernels"])
        bad = api_post(nb_server, "/api/atelier/notebook-schedules",
                       {"name": "x", "source": "workspace:nightly.ipynb", "cron": "every day"})
        assert bad.status_code == 400 and "cron" in bad.json()["message"]
    finally:
        for n in ("nightly", "flaky"):
            requests.delete(f"{nb_server.url}/api/atelier/notebook-schedules/{n}", timeout=10)
        httpd.shutdown()
    # deleted schedules fire no more
    time.sleep(1)
    before = len(api_get(nb_server, RUNS, params={"schedule": "nightly"}).json()["runs"])
    time.sleep(4)
    assert len(api_get(nb_server, RUNS, params={"schedule": "nightly"}).json()["runs"]) == before


def test_a_workspace_notebook_previews_and_an_artifact_imports_into_the_workspace(nb_server, tmp_path):
    ws = nb_server.data_dir / "workspaces" / "default"
    ws.mkdir(parents=True, exist_ok=True)
    nbformat.write(analysis(), str(ws / "look.ipynb"))
    pv = api_get(nb_server, "/api/atelier/notebooks/preview", params={"source": "workspace:look.ipynb"})
    assert pv.status_code == 200, pv.text
    body = pv.json()
    assert "<h1" in body["html"] and "Analysis" in body["html"] and body["cells"] == 4
    art = upload(nb_server, write(tmp_path, "shared.ipynb", analysis()))
    r = api_post(nb_server, "/api/atelier/notebooks/import", {"source": art})
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "shared.ipynb" and r.json()["url"] == "/notebooks/default/lab/tree/shared.ipynb"
    assert (ws / "shared.ipynb").exists()
    # importing again never overwrites the user's copy
    assert api_post(nb_server, "/api/atelier/notebooks/import", {"source": art}).json()["path"] == "shared-1.ipynb"


def test_autopilots_candidate_notebook_reproduces_the_candidate_as_a_notebook_job(nb_server):
    csv = Path(__file__).resolve().parents[2] / "datasets" / "penguins.csv"
    r = requests.put(f"{nb_server.url}/api/atelier/datasets/penguins.csv", data=csv.read_bytes(),
                     headers={"Content-Type": "text/csv"}, timeout=20)
    assert r.status_code in (200, 201), r.text
    r = api_post(nb_server, "/api/atelier/automl",
                 {"dataset": "penguins.csv", "target": "species", "time_budget": 10, "max_candidates": 3})
    assert r.status_code == 202, r.text
    auto = wait_job(nb_server, r.json()["job"]["id"], timeout=180)
    assert auto["status"] == "succeeded", auto
    notebook_path = auto["result"]["reports"]["notebook"]
    # as the Studio's "Reproduce as notebook job" does: the dataset as the job's input `data`
    r = api_post(nb_server, RUNS, {"source": notebook_path, "inputs": {"data": "datasets/penguins.csv"},
                                   "experiment": "Autopilot"})
    assert r.status_code == 202, r.text
    job = wait_job(nb_server, r.json()["job"]["id"], timeout=180)
    assert job["status"] == "succeeded", job
    pv = api_get(nb_server, "/api/atelier/notebooks/preview", params={"source": f"job:{job['id']}"}).json()
    assert "accuracy = " in pv["html"] and pv["failed_cell"] is None
    # and "Open in JupyterLab" copies it into the workspace
    r = api_post(nb_server, "/api/atelier/notebooks/import", {"source": notebook_path, "path": "autopilot/penguins.ipynb"})
    assert r.status_code == 200 and r.json()["path"] == "autopilot/penguins.ipynb", r.text
    assert (nb_server.data_dir / "workspaces" / "default" / "autopilot" / "penguins.ipynb").exists()
