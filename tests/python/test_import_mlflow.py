"""`atelier import mlflow`: moving over from a real MLflow server (issue 14).

A real `mlflow server` of the pinned version (SQLite backend store, local artifact folder) is
filled through the real client: experiments with tags, runs with params, tags, metric histories
with steps, NaN and infinity, a dataset input, an artifact, a logged model with params and
metrics, registered models with versions, tags and aliases, a deleted run and a deleted
experiment, traces with spans, tags and assessments (one overridden), a trace linked to a run.
Everything is read back through the client while MLflow serves it; then MLflow is stopped, its
database checksummed, `atelier import mlflow` run, `atelier serve` started on the imported
folder, and the same reading through the same client must give the same answer: ids,
timestamps, histories, artifacts. The MLflow database must be byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import ViewType

from conftest import REFERENCE, free_port, run_cli, start_server, with_database

pytestmark = pytest.mark.skipif(REFERENCE, reason="imports into Atelier; nothing to check against MLflow itself")


# ------------------------------------------------------------------ the MLflow side

def _start_mlflow(folder: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    (folder / "artifacts").mkdir(parents=True, exist_ok=True)
    log = open(folder / "mlflow-server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server",
         "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
         "--artifacts-destination", str(folder / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1", *extra],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder,
        start_new_session=True,  # its uvicorn workers and job consumers go with it
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n"
                        f"{(folder / 'mlflow-server.log').read_text(errors='replace')[-4000:]}")
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.3)
    _stop_mlflow(proc)
    pytest.fail("mlflow server did not answer /health within 120 s")


def _stop_mlflow(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    # the process group: workers and job consumers started by the server
    for _ in range(50):
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    time.sleep(0.5)


@mlflow.trace(name="pipeline", span_type="CHAIN")
def _pipeline(x):
    with mlflow.start_span("tool", span_type="TOOL") as span:
        span.set_inputs({"q": x})
        span.set_attribute("weight", 0.25)
        span.set_attribute("labels", ["a", "b"])
        span.add_event(mlflow.entities.SpanEvent("checkpoint", attributes={"n": 3}))
        # MLflow keeps the trace's total in trace_info columns; the import turns them back into metadata
        span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10})
        span.set_outputs({"r": x + 1})
    return (x + 1) * 2


@mlflow.trace(name="explode")
def _explode(x):
    raise ValueError(f"bad {x}")


def _fill(url: str, workdir: Path) -> dict:
    """Fill the MLflow server through the client; returns the ids made."""
    import pandas as pd
    from mlflow.entities import AssessmentSource, Feedback
    from sklearn.linear_model import LinearRegression

    mlflow.set_tracking_uri(url)
    c = MlflowClient(url)
    ids: dict = {}
    exp = c.create_experiment("import-main", tags={"team": "vision", "stage": "dev"})
    ids["exp"] = exp
    mlflow.set_experiment(experiment_id=exp)
    with mlflow.start_run(run_name="trained") as run:
        rid = run.info.run_id
        mlflow.log_params({"lr": "0.1", "depth": "3"})
        mlflow.set_tags({"owner": "ana", "purpose": "import"})
        for step in range(25):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        c.log_metric(rid, "twice", 1.0, timestamp=1_700_000_000_000, step=4)
        c.log_metric(rid, "twice", 2.0, timestamp=1_700_000_000_500, step=4)
        mlflow.log_metric("nan_metric", float("nan"))
        mlflow.log_metric("inf_metric", float("inf"))
        frame = pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="toy"), context="training")
        (workdir / "notes.txt").write_text("artifact body\n")
        mlflow.log_artifact(str(workdir / "notes.txt"), artifact_path="docs")
        mlflow.log_text("nested", "docs/deeper/more.txt")
        model = LinearRegression().fit([[1.0], [2.0], [3.0]], [2.0, 4.0, 6.0])
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="import-reg",
                                        params={"alpha": "1"})
        mlflow.log_metric("r2", 0.99, model_id=info.model_id)
        ids["model_id"] = info.model_id
        # a trace under the run (mlflow.sourceRun)
        _pipeline(1)
    ids["run"] = rid
    with mlflow.start_run(run_name="to-delete") as gone:
        mlflow.log_metric("loss", 3.0)
    c.delete_run(gone.info.run_id)
    ids["deleted_run"] = gone.info.run_id
    c.set_registered_model_tag("import-reg", "owner", "ana")
    c.create_model_version("import-reg", f"runs:/{rid}/docs", rid, tags={"kind": "docs"},
                           description="the docs")
    c.set_registered_model_alias("import-reg", "champion", "1")
    c.set_registered_model_alias("import-reg", "docs", "2")
    c.set_model_version_tag("import-reg", "1", "validated", "yes")
    c.transition_model_version_stage("import-reg", "1", "Staging")
    c.create_registered_model("import-empty", description="no versions yet")
    gone_exp = c.create_experiment("import-gone")
    c.delete_experiment(gone_exp)
    ids["deleted_exp"] = gone_exp

    _pipeline(2)
    mlflow.flush_trace_async_logging()
    tid = mlflow.get_last_active_trace_id()
    human = AssessmentSource(source_type="HUMAN", source_id="reviewer")
    fb = mlflow.log_feedback(trace_id=tid, name="quality", value=0.5, rationale="fine", source=human,
                             metadata={"round": "1"})
    mlflow.log_expectation(trace_id=tid, name="answer", value={"result": 6})
    mlflow.log_expectation(trace_id=tid, name="plain", value="six")
    mlflow.override_feedback(trace_id=tid, assessment_id=fb.assessment_id, value=1.0, rationale="better")
    c.set_trace_tag(tid, "team", "blue")
    with pytest.raises(ValueError):
        _explode(3)
    mlflow.flush_trace_async_logging()
    failed = mlflow.get_last_active_trace_id()
    c.link_traces_to_run([failed], rid)
    ids["traces"] = [tid, failed]
    return ids


# ------------------------------------------------------------------ one reading of a server

def _num(v):
    if v is None:
        return None
    return "nan" if isinstance(v, float) and math.isnan(v) else v


def _tags(d):
    return dict(sorted((d or {}).items()))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> dict:
    out = {}
    for f in client.list_artifacts(run_id, path):
        if f.is_dir:
            out.update(_artifacts(client, run_id, f.path))
        else:
            out[f.path] = f.file_size
    return out


def _read(url: str, ids: dict, dl: Path) -> dict:
    """Everything a user reads back, in a comparable form."""
    mlflow.set_tracking_uri(url)
    c = MlflowClient(url)
    snap: dict = {}
    exps = c.search_experiments(view_type=ViewType.ALL)
    snap["experiments"] = sorted(
        (e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time,
         e.last_update_time, tuple(_tags(e.tags).items()))
        for e in exps
    )
    exp_ids = [e.experiment_id for e in exps]
    runs = c.search_runs(exp_ids, run_view_type=ViewType.ALL, max_results=1000)
    snap["runs"] = {}
    snap["histories"] = {}
    for r in runs:
        i = r.info
        snap["runs"][i.run_id] = {
            "info": (i.run_name, i.experiment_id, i.user_id, i.status, i.start_time, i.end_time,
                     i.artifact_uri, i.lifecycle_stage),
            "params": _tags(r.data.params),
            "tags": _tags(r.data.tags),
            "metrics": {k: _num(v) for k, v in sorted(r.data.metrics.items())},
            "datasets": sorted(
                (d.dataset.name, d.dataset.digest, d.dataset.source_type, d.dataset.source,
                 d.dataset.schema, d.dataset.profile, tuple((t.key, t.value) for t in d.tags))
                for d in (r.inputs.dataset_inputs if r.inputs else [])
            ),
            "model_outputs": sorted((o.model_id, o.step) for o in (r.outputs.model_outputs if r.outputs else [])),
        }
        for key in r.data.metrics:
            hist = c.get_metric_history(i.run_id, key)
            snap["histories"][(i.run_id, key)] = sorted(
                (m.step, m.timestamp, _num(m.value)) for m in hist
            )
    latest = c.get_run(ids["run"])
    snap["run_get_metrics"] = {k: _num(v) for k, v in sorted(latest.data.metrics.items())}
    snap["artifacts"] = _artifacts(c, ids["run"])
    got = mlflow.artifacts.download_artifacts(run_id=ids["run"], artifact_path="docs",
                                              dst_path=str(dl / "docs"))
    snap["artifact_bytes"] = sorted(
        (str(p.relative_to(got)), _sha(p)) for p in Path(got).rglob("*") if p.is_file()
    )

    models = c.search_logged_models(experiment_ids=exp_ids)
    snap["logged_models"] = {}
    for m in models:
        snap["logged_models"][m.model_id] = {
            "info": (m.name, m.experiment_id, m.creation_timestamp, m.last_updated_timestamp,
                     str(m.status), m.source_run_id, m.artifact_location, m.model_type),
            "tags": _tags(m.tags),
            "params": _tags(m.params),
            "metrics": sorted((x.key, _num(x.value), x.step, x.timestamp, x.dataset_name, x.dataset_digest)
                              for x in (m.metrics or [])),
        }
    mdir = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{ids['model_id']}",
                                               dst_path=str(dl / "model"))
    snap["model_files"] = sorted(
        (str(p.relative_to(mdir)), _sha(p)) for p in Path(mdir).rglob("*") if p.is_file()
    )
    loaded = mlflow.sklearn.load_model("models:/import-reg@champion")
    snap["prediction"] = [round(float(v), 9) for v in loaded.predict([[4.0]])]

    snap["registry"] = {}
    for rm in c.search_registered_models(max_results=100):
        versions = c.search_model_versions(f"name = '{rm.name}'")
        snap["registry"][rm.name] = {
            # MLflow answers a description never set as None, Atelier as "" (its wire, not the import)
            "info": (rm.creation_timestamp, rm.last_updated_timestamp, rm.description or ""),
            "tags": _tags(rm.tags),
            "aliases": _tags(rm.aliases),
            "versions": sorted(
                (v.version, v.creation_timestamp, v.last_updated_timestamp, v.description or "", v.user_id,
                 v.current_stage, v.source, v.run_id, v.status, v.run_link, tuple(_tags(v.tags).items()),
                 # MLflow's search leaves version aliases out; its get has them
                 tuple(sorted(c.get_model_version(rm.name, v.version).aliases)))
                for v in versions
            ),
        }
    snap["by_alias"] = c.get_model_version_by_alias("import-reg", "docs").version

    snap["traces"] = {}
    for t in c.search_traces(locations=exp_ids, max_results=100):
        i = t.info
        full = c.get_trace(i.trace_id)
        snap["traces"][i.trace_id] = {
            "info": (i.experiment_id, i.request_time, i.execution_duration, str(i.state),
                     i.request_preview, i.response_preview, i.client_request_id),
            "tags": _tags(i.tags),
            "metadata": _tags(i.trace_metadata),
            "assessments": sorted(
                (a.assessment_id, a.name, repr(a.value), a.source.source_type, a.source.source_id,
                 a.create_time_ms, a.last_update_time_ms, a.rationale, a.valid, a.overrides,
                 tuple(_tags(a.metadata).items()))
                for a in full.info.assessments
            ),
            "spans": sorted(
                (s.span_id, s.parent_id, s.name, s.span_type, str(s.status.status_code), s.start_time_ns,
                 s.end_time_ns, repr(sorted(s.attributes.items())),
                 repr([(e.name, e.timestamp, sorted(e.attributes.items())) for e in s.events]))
                for s in full.data.spans
            ),
        }
    snap["run_traces"] = sorted(
        t.info.trace_id for t in c.search_traces(locations=[ids["exp"]],
                                                 filter_string=f"trace.run_id = '{ids['run']}'")
    )
    return snap


# ------------------------------------------------------------------ the test

@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A filled MLflow server's folder (server stopped) and what the client read from it."""
    folder = tmp_path_factory.mktemp("mlflow-src")
    proc, url = _start_mlflow(folder)
    try:
        ids = _fill(url, folder)
        expected = _read(url, ids, Path(tempfile.mkdtemp(prefix="mlflow-dl-")))
    finally:
        _stop_mlflow(proc)
    return folder, ids, expected


def _import(folder: Path, data_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(["import", "mlflow", "--from", f"sqlite:///{folder}/mlflow.db",
                    "--artifacts", str(folder / "artifacts"), "--data-dir", str(data_dir), *extra],
                   timeout=300)


def test_everything_reads_back_the_same_and_the_source_is_untouched(source, tmp_path):
    folder, ids, expected = source
    db = folder / "mlflow.db"
    before = _sha(db)
    files_before = sorted(p.name for p in folder.iterdir())

    data_dir = tmp_path / "atelier"
    done = _import(folder, data_dir)
    assert done.returncode == 0, done.stderr + done.stdout
    # progress and the verified per-table counts
    assert "metrics:" in done.stderr and "(100 %)" in done.stderr, done.stderr
    assert "counts verified" in done.stdout, done.stdout
    lines = {ln.split()[0]: ln.split()[1:3] for ln in done.stdout.splitlines()[2:] if ln[:1].isalpha()}
    for table in ("experiments", "runs", "metrics", "params", "logged_models", "model_versions",
                  "registered_model_aliases", "trace_info", "spans", "assessments"):
        assert table in lines, done.stdout
    assert lines["runs"] == ["2", "2"] and lines["assessments"][0] == lines["assessments"][1], done.stdout
    assert int(lines["metrics"][0]) >= 29 and int(lines["spans"][0]) == 5, done.stdout

    assert _sha(db) == before, "the MLflow database changed"
    assert sorted(p.name for p in folder.iterdir()) == files_before, "files appeared beside the MLflow database"

    srv = start_server(data_dir)
    try:
        actual = _read(srv.url, ids, tmp_path / "dl")
        # work goes on where MLflow left off: new ids follow the imported ones
        c = MlflowClient(srv.url)
        new_exp = c.create_experiment("after-import")
        assert int(new_exp) > max(int(e[0]) for e in expected["experiments"])
        mv = c.create_model_version("import-reg", f"runs:/{ids['run']}/docs", ids["run"])
        assert mv.version == "3"
        c.log_metric(ids["run"], "loss", 0.01, step=25)
        assert len(c.get_metric_history(ids["run"], "loss")) == 26
    finally:
        srv.stop()

    # MLflow keeps a NaN logged-model metric as 0 (its table has no NaN flag); Atelier keeps
    # it as the run's own NaN point. Everything else must be equal.
    for mid, m in expected["logged_models"].items():
        m["metrics"] = [("nan_metric", "nan", *rest) if (k == "nan_metric" and v == 0.0) else (k, v, *rest)
                        for (k, v, *rest) in m["metrics"]]
    differ = [f"{key}:\n  mlflow:  {expected[key]!r}\n  atelier: {actual[key]!r}"
              for key in expected if actual[key] != expected[key]]
    assert not differ, "differs after the import:\n" + "\n".join(differ)
    assert ids["deleted_run"] in actual["runs"] and actual["runs"][ids["deleted_run"]]["info"][-1] == "deleted"
    assert any(e[0] == ids["deleted_exp"] and e[3] == "deleted" for e in actual["experiments"])
    assert set(ids["traces"]) <= set(actual["traces"])
    usage = actual["traces"][ids["traces"][0]]["metadata"].get("mlflow.trace.tokenUsage")
    assert usage and '"total_tokens": 10' in usage, "token usage (MLflow's trace_info columns) is kept"
    assert _sha(db) == before


def _count(data_dir, table: str) -> int:
    """Rows of one of Atelier's tables, on whichever backend the data folder's server uses: its
    metadata.db, or — with ATELIER_TEST_DATABASE_URL set — the folder's own PostgreSQL database
    (named, as the binary names it, from the folder's canonical path)."""
    server = os.environ.get("ATELIER_TEST_DATABASE_URL", "")
    if not server:
        return sqlite3.connect(data_dir / "metadata.db").execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    name = "atelier_f_" + hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:24]
    url = with_database(server, name)
    out = subprocess.run(["psql", url, "-tAc", f"SELECT COUNT(*) FROM {table}"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_a_second_import_into_the_same_folder_is_refused_whole(source, tmp_path):
    folder, _, _ = source
    data_dir = tmp_path / "atelier"
    first = _import(folder, data_dir)
    assert first.returncode == 0, first.stderr
    runs_before = _count(data_dir, "runs")
    assert runs_before > 0
    second = _import(folder, data_dir)
    assert second.returncode != 0
    assert "already holds" in second.stderr and "nothing was imported" in second.stderr, second.stderr
    assert _count(data_dir, "runs") == runs_before


def test_other_databases_and_unknown_schema_revisions_get_clear_errors(source, tmp_path):
    folder, _, _ = source
    for uri in ("postgresql://mlflow@127.0.0.1/mlflow", "mysql://127.0.0.1/mlflow"):
        r = run_cli(["import", "mlflow", "--from", uri, "--data-dir", str(tmp_path / "x")])
        assert r.returncode != 0 and "only SQLite" in r.stderr, r.stderr
        assert not (tmp_path / "x").exists(), "nothing is created for a refused source"

    copy = tmp_path / "old.db"
    shutil.copy(folder / "mlflow.db", copy)
    with sqlite3.connect(copy) as con:
        con.execute("UPDATE alembic_version SET version_num = '0a8213491aaa'")
    r = run_cli(["import", "mlflow", "--from", f"sqlite:///{copy}", "--data-dir", str(tmp_path / "y")])
    assert r.returncode != 0
    assert "'0a8213491aaa'" in r.stderr and "has not been checked" in r.stderr, r.stderr

    r = run_cli(["import", "mlflow", "--from", f"sqlite:///{tmp_path}/missing.db", "--data-dir", str(tmp_path / "z")])
    assert r.returncode != 0 and "does not exist" in r.stderr, r.stderr


def test_a_failed_import_leaves_no_rows_and_no_copied_artifacts(source, tmp_path):
    folder, ids, _ = source
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(folder / "mlflow.db", broken / "mlflow.db")
    shutil.copytree(folder / "artifacts", broken / "artifacts")
    with sqlite3.connect(broken / "mlflow.db") as con:
        # the traces come last: runs, metrics and artifacts were copied when this fails
        con.execute("UPDATE spans SET content = 'not json' WHERE trace_id = ?", (ids["traces"][1],))
    data_dir = tmp_path / "atelier"
    r = _import(broken, data_dir)
    assert r.returncode != 0
    assert ids["traces"][1] in r.stderr and "not a JSON object" in r.stderr, r.stderr
    assert _count(data_dir, "runs") == 0
    assert _count(data_dir, "experiments") == 1, "only Atelier's own Default"
    leftovers = [p for p in (data_dir / "artifacts").rglob("*")] if (data_dir / "artifacts").exists() else []
    assert leftovers == [], f"copied artifacts were left behind: {leftovers[:5]}"


def test_a_server_without_artifact_proxying_has_its_local_artifacts_copied_and_served(tmp_path):
    """`mlflow server --default-artifact-root DIR --no-serve-artifacts`: the client writes files
    straight into DIR and runs hold local paths; imported, they are Atelier's own
    `mlflow-artifacts:/` artifacts."""
    folder = tmp_path / "mlflow-local"
    root = folder / "store"
    root.mkdir(parents=True)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server",
         "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
         "--default-artifact-root", str(root), "--no-serve-artifacts",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=open(folder / "server.log", "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        cwd=folder, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (folder / "server.log").read_text(errors="replace")[-3000:]
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.3)
        c = MlflowClient(url)
        exp = c.create_experiment("local-artifacts")
        run = c.create_run(exp, run_name="local")
        mlflow.set_tracking_uri(url)
        c.log_text(run.info.run_id, "kept on disk", "out/result.txt")
        c.set_terminated(run.info.run_id)
        before = c.get_run(run.info.run_id).info
        assert not before.artifact_uri.startswith("mlflow-artifacts:"), before.artifact_uri
    finally:
        _stop_mlflow(proc)

    data_dir = tmp_path / "atelier"
    r = run_cli(["import", "mlflow", "--from", f"sqlite:///{folder}/mlflow.db", "--artifacts", str(root),
                 "--data-dir", str(data_dir)], timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    srv = start_server(data_dir)
    try:
        mlflow.set_tracking_uri(srv.url)
        c = MlflowClient(srv.url)
        info = c.get_run(run.info.run_id).info
        assert info.artifact_uri == f"mlflow-artifacts:/{exp}/{run.info.run_id}/artifacts"
        assert (info.start_time, info.end_time) == (before.start_time, before.end_time)
        assert c.get_experiment(exp).artifact_location == f"mlflow-artifacts:/{exp}"
        got = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="out/result.txt",
                                                  dst_path=str(tmp_path / "dl"))
        assert Path(got).read_text() == "kept on disk"
    finally:
        srv.stop()
    assert (root / exp / run.info.run_id / "artifacts" / "out" / "result.txt").exists(), "the source stays"


def _fill_workspaces(url: str) -> dict:
    """Two workspaces beside default, each with an experiment of the same name, a run with a
    metric, a param and an artifact, and a registered model version; returns what was made."""
    c = MlflowClient(url)
    mlflow.set_tracking_uri(url)
    c.create_workspace("team-a", description="team a's work")
    c.create_workspace("team-b")
    made = {}
    try:
        for ws in ("default", "team-a", "team-b"):
            mlflow.set_workspace(ws)
            exp = mlflow.set_experiment("shared-name")
            with mlflow.start_run() as run:
                mlflow.log_param("team", ws)
                mlflow.log_metric("score", len(ws))
                mlflow.log_text(f"notes of {ws}", "notes.txt")
            c.create_registered_model(f"model-{ws}")
            c.create_model_version(f"model-{ws}", f"runs:/{run.info.run_id}/notes.txt", run.info.run_id)
            made[ws] = {"exp": exp.experiment_id, "location": exp.artifact_location,
                        "run": run.info.run_id, "uri": c.get_run(run.info.run_id).info.artifact_uri}
    finally:
        mlflow.set_workspace(None)
    return made


def test_workspaces_become_projects_with_their_experiments_models_and_artifacts(tmp_path):
    """`mlflow server --enable-workspaces`: each workspace becomes the Atelier project of that name,
    its experiments and models stay in it (the same experiment name in several), and artifacts
    MLflow kept under workspaces/<ws>/<id> are served from the experiment's own folder."""
    folder = tmp_path / "mlflow-ws"
    proc, url = _start_mlflow(folder, "--enable-workspaces")
    try:
        made = _fill_workspaces(url)
    finally:
        _stop_mlflow(proc)
    assert made["team-a"]["location"] == f"mlflow-artifacts:/workspaces/team-a/{made['team-a']['exp']}"
    db = folder / "mlflow.db"
    before = _sha(db)

    # MLflow keeps registered model names per workspace; Atelier across projects (for now):
    # a name in two workspaces is refused whole, naming both
    twice = tmp_path / "twice.db"
    shutil.copy(db, twice)
    with sqlite3.connect(twice) as con:
        con.execute("INSERT INTO registered_models (name, workspace, creation_time, last_updated_time) "
                    "VALUES ('model-team-a', 'team-b', 1, 1)")
    refused_dir = tmp_path / "refused"
    r = run_cli(["import", "mlflow", "--from", f"sqlite:///{twice}", "--data-dir", str(refused_dir)])
    assert r.returncode != 0
    assert "'model-team-a' (in team-a, team-b)" in r.stderr and "rename" in r.stderr, r.stderr
    assert _count(refused_dir, "workspaces") == 1, "no project was made"
    # an experiment of team-a pointed at the default workspace's experiment folder would
    # take that folder (and its runs' files) into team-a: refused, nothing written
    shared = tmp_path / "shared.db"
    shutil.copy(db, shared)
    with sqlite3.connect(shared) as con:
        con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                    (made["default"]["location"], int(made["team-a"]["exp"])))
    r = run_cli(["import", "mlflow", "--from", f"sqlite:///{shared}", "--artifacts", str(folder / "artifacts"),
                 "--data-dir", str(tmp_path / "shared")])
    assert r.returncode != 0 and "same folder" in r.stderr, r.stderr
    assert _count(tmp_path / "shared", "runs") == 0

    data_dir = tmp_path / "atelier"
    done = _import(folder, data_dir)
    assert done.returncode == 0, done.stderr + done.stdout
    lines = {ln.split()[0]: ln.split()[1:3] for ln in done.stdout.splitlines()[2:] if ln[:1].isalpha()}
    assert lines["workspaces"] == ["3", "2"] and "'default' workspace" in done.stdout, done.stdout
    assert _sha(db) == before, "the MLflow database changed"

    srv = start_server(data_dir)
    try:
        mlflow.set_tracking_uri(srv.url)
        c = MlflowClient(srv.url)
        projects = {w.name: w for w in c.list_workspaces()}
        assert set(projects) == {"default", "team-a", "team-b"}
        assert projects["team-a"].description == "team a's work"
        for ws, m in made.items():
            mlflow.set_workspace(ws)
            exp = c.get_experiment_by_name("shared-name")
            assert exp.experiment_id == m["exp"], ws
            assert exp.artifact_location == f"mlflow-artifacts:/{m['exp']}"
            runs = c.search_runs([m["exp"]])
            assert [r.info.run_id for r in runs] == [m["run"]]
            assert runs[0].data.params == {"team": ws} and runs[0].data.metrics == {"score": len(ws)}
            assert runs[0].info.artifact_uri == f"mlflow-artifacts:/{m['exp']}/{m['run']}/artifacts"
            got = mlflow.artifacts.download_artifacts(run_id=m["run"], artifact_path="notes.txt",
                                                      dst_path=str(tmp_path / "dl" / ws))
            assert Path(got).read_text() == f"notes of {ws}"
            assert [rm.name for rm in c.search_registered_models()] == [f"model-{ws}"]
            assert c.get_model_version(f"model-{ws}", "1").run_id == m["run"]
        # another project's experiment, run and model answer as missing ones do
        mlflow.set_workspace("team-b")
        with pytest.raises(mlflow.exceptions.MlflowException) as e:
            c.get_run(made["team-a"]["run"])
        assert e.value.get_http_status_code() == 404
        with pytest.raises(mlflow.exceptions.MlflowException):
            c.get_registered_model("model-team-a")
    finally:
        mlflow.set_workspace(None)
        srv.stop()
    assert (folder / "artifacts" / "workspaces" / "team-a").is_dir(), "the source stays"
    assert _sha(db) == before
