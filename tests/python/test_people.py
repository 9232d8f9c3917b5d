"""People and roles per project (`atelier users`, `atelier projects`, `--require-auth`): the real
mlflow client works inside the projects its user has a role in, as that role allows, and is
refused outside them — another project answers 404 as one that does not exist. Studio sign-in
with a password opens a session that sign-out ends; failed sign-ins are throttled per name."""

import os
import subprocess
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from _helpers import API, unique
from conftest import REFERENCE, atelier_bin, start_server

pytestmark = pytest.mark.skipif(REFERENCE, reason="Atelier-only: MLflow's server has no users here")

PASSWORD = "correct horse battery"


def cli(*args, stdin=None):
    r = subprocess.run([str(atelier_bin()), *args], input=stdin, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"atelier {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


def token_of(out: str) -> str:
    return [ln.strip() for ln in out.splitlines() if ln.strip()][-1]


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("people"))
    at = ["--data-dir", d]
    cli("users", "create", "root", "--admin", "--password-stdin", *at, stdin=PASSWORD + "\n")
    cli("users", "create", "alice", "--password-stdin", *at, stdin=PASSWORD + "\n")
    cli("users", "create", "bob", *at)
    cli("projects", "create", "team-a", "--description", "Team A", *at)
    cli("projects", "create", "team-b", *at)
    cli("projects", "grant", "team-a", "alice", "editor", *at)
    cli("projects", "grant", "team-b", "bob", "viewer", *at)
    tokens = {
        "root": token_of(cli("token", "create", "root-t", "--user", "root", "--role", "admin", *at)),
        "alice": token_of(cli("token", "create", "alice-t", "--user", "alice", "--role", "editor", *at)),
        "alice-ro": token_of(cli("token", "create", "alice-ro", "--user", "alice", "--role", "viewer", *at)),
        "bob": token_of(cli("token", "create", "bob-t", "--user", "bob", "--role", "admin", *at)),
    }
    listing = cli("users", "list", *at)
    assert "alice\t-\tpassword\tteam-a:editor" in listing, listing
    assert "bob\t-\ttokens-only\tteam-b:viewer" in listing, listing
    assert "root\tserver-admin\tpassword\t-" in listing, listing
    srv = start_server(Path(d), ["--require-auth"], ready_statuses=(200, 401))
    yield srv, tokens
    srv.stop()


@pytest.fixture(autouse=True)
def _clean_env():
    yield
    mlflow.set_workspace(None)
    for k in ("MLFLOW_WORKSPACE", "MLFLOW_TRACKING_TOKEN"):
        os.environ.pop(k, None)


def as_user(srv, token, workspace):
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    mlflow.set_tracking_uri(srv.url)
    mlflow.set_workspace(workspace)
    return MlflowClient(srv.url)


def call(srv, token, method, path, workspace=None, **kw):
    h = {"Authorization": f"Bearer {token}"}
    if workspace:
        h["X-MLFLOW-WORKSPACE"] = workspace
    return requests.request(method, f"{srv.url}{path}", headers=h, timeout=10, **kw)


def test_the_client_works_in_its_users_project_and_is_refused_outside_it(team):
    srv, t = team
    c = as_user(srv, t["alice"], "team-a")
    assert [w.name for w in c.list_workspaces()] == ["team-a"]
    exp = c.create_experiment(unique("alice-exp"))
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_metric("loss", 0.5)
    assert c.get_run(run.info.run_id).data.metrics == {"loss": 0.5}

    # another project: 404, exactly as one that does not exist
    c = as_user(srv, t["alice"], "team-b")
    with pytest.raises(MlflowException) as e:
        c.search_experiments()
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "team-b" in str(e.value)
    r = call(srv, t["alice"], "GET", f"{API}/experiments/search", "team-b", params={"max_results": 5})
    r2 = call(srv, t["alice"], "GET", f"{API}/experiments/search", "no-such-team", params={"max_results": 5})
    assert (r.status_code, r.json()["message"].replace("team-b", "X")) == \
        (r2.status_code, r2.json()["message"].replace("no-such-team", "X")) == \
        (404, "Workspace 'X' not found")
    # the default project, where she has no role: 403 that says what to do
    r = call(srv, t["alice"], "GET", f"{API}/experiments/search", params={"max_results": 5})
    assert r.status_code == 403 and "X-MLFLOW-WORKSPACE" in r.json()["message"], r.text

    # bob (viewer of team-b) cannot reach alice's run through his project either
    r = call(srv, t["bob"], "GET", f"{API}/runs/get", "team-b", params={"run_id": run.info.run_id})
    assert r.status_code == 404, r.text


def test_a_role_and_a_tokens_role_limit_what_it_may_do(team):
    srv, t = team
    # bob: viewer in team-b, with an admin-role token: reads, cannot write
    c = as_user(srv, t["bob"], "team-b")
    assert c.search_experiments() is not None
    with pytest.raises(MlflowException) as e:
        c.create_experiment(unique("bob"))
    assert e.value.error_code == "PERMISSION_DENIED"
    assert "viewer" in str(e.value)
    # alice, editor in team-a, with a viewer-role token: reads, cannot write
    c = as_user(srv, t["alice-ro"], "team-a")
    c.search_experiments()
    with pytest.raises(MlflowException) as e:
        c.create_experiment(unique("ro"))
    assert e.value.error_code == "PERMISSION_DENIED"
    # a server admin acts everywhere
    c = as_user(srv, t["root"], "team-b")
    c.create_experiment(unique("root-in-b"))
    assert {"default", "team-a", "team-b"} <= {w.name for w in c.list_workspaces()}


def test_only_admins_manage_people_and_projects(team):
    srv, t = team
    me = call(srv, t["alice"], "GET", "/api/atelier/me").json()
    assert (me["name"], me["admin"], me["projects"]) == ("alice", False, [{"project": "team-a", "role": "editor"}])
    assert call(srv, t["alice"], "GET", "/api/atelier/users").status_code == 403
    assert call(srv, t["alice"], "POST", "/api/atelier/users", json={"name": "mallory"}).status_code == 403
    # an editor of team-a cannot grant roles there; in team-b she is told nothing exists
    r = call(srv, t["alice"], "PUT", "/api/atelier/projects/team-a/members/bob", json={"role": "admin"})
    assert r.status_code == 403, r.text
    r = call(srv, t["alice"], "PUT", "/api/atelier/projects/team-b/members/alice", json={"role": "admin"})
    assert r.status_code == 404, r.text
    r = call(srv, t["alice"], "POST", "/api/3.0/mlflow/workspaces", json={"name": unique("ws").lower()})
    assert r.status_code == 403, r.text

    # the server admin: a new user, made admin of team-b, who then manages team-b's members
    name = unique("carol").lower()
    r = call(srv, t["root"], "POST", "/api/atelier/users", json={"name": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    assert r.json()["user"]["has_password"] is True
    assert call(srv, t["root"], "PUT", f"/api/atelier/projects/team-b/members/{name}",
                json={"role": "admin"}).status_code == 200
    r = call(srv, t["root"], "POST", "/api/atelier/tokens", json={"name": name + "-t", "user": name, "role": "admin"})
    assert r.status_code == 201, r.text
    carol = r.json()["token"]
    r = call(srv, carol, "PUT", "/api/atelier/projects/team-b/members/alice", json={"role": "viewer"})
    assert r.status_code == 200, r.text
    members = call(srv, carol, "GET", "/api/atelier/projects/team-b/members").json()["members"]
    assert {"user": "alice", "role": "viewer"} in members
    c = as_user(srv, t["alice"], "team-b")
    c.search_experiments()  # now she reads team-b
    assert call(srv, carol, "DELETE", "/api/atelier/projects/team-b/members/alice").status_code == 204
    with pytest.raises(MlflowException):
        as_user(srv, t["alice"], "team-b").search_experiments()
    # unknown roles, bad names and short passwords are 400s that say what to fix
    r = call(srv, carol, "PUT", "/api/atelier/projects/team-b/members/bob", json={"role": "owner"})
    assert r.status_code == 400 and "viewer, editor or admin" in r.json()["message"]
    r = call(srv, t["root"], "POST", "/api/atelier/users", json={"name": "x y"})
    assert r.status_code == 400, r.text
    r = call(srv, t["root"], "POST", "/api/atelier/users", json={"name": unique("d").lower(), "password": "short"})
    assert r.status_code == 400 and "at least 8" in r.json()["message"]


def test_own_tokens_are_made_listed_and_revoked_and_others_are_invisible(team):
    srv, t = team
    r = call(srv, t["alice"], "POST", "/api/atelier/tokens", json={"name": "alice-nb", "expires_in_days": 30})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["role"] == "viewer" and body["expires"] > 0
    nb = body["token"]
    assert call(srv, nb, "GET", f"{API}/experiments/search", "team-a", params={"max_results": 1}).status_code == 200
    names = [x["name"] for x in call(srv, t["alice"], "GET", "/api/atelier/tokens").json()["tokens"]]
    assert "alice-nb" in names and "bob-t" not in names
    # bob's token is, to alice, no token at all
    assert call(srv, t["alice"], "DELETE", "/api/atelier/tokens/bob-t").status_code == 404
    assert call(srv, t["alice"], "POST", "/api/atelier/tokens",
                json={"name": "for-bob", "user": "bob"}).status_code == 403
    assert call(srv, t["alice"], "DELETE", "/api/atelier/tokens/alice-nb").status_code == 204
    assert call(srv, nb, "GET", f"{API}/experiments/search", "team-a", params={"max_results": 1}).status_code == 401


def test_studio_sign_in_opens_a_session_that_sign_out_ends(team):
    srv, _ = team
    s = requests.Session()
    r = s.post(f"{srv.url}/login", data={"user": "alice", "password": PASSWORD}, allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303), r.text
    cookie = s.cookies.get("atelier_token")
    assert cookie and cookie.startswith("ats_")
    assert s.get(f"{srv.url}/api/atelier/me", timeout=10).json()["name"] == "alice"
    r = s.get(f"{srv.url}{API}/experiments/search", params={"max_results": 1},
              headers={"X-MLFLOW-WORKSPACE": "team-a"}, timeout=10)
    assert r.status_code == 200, r.text
    # a GET only asks (no other site can sign anyone out with a link); the form POSTs
    r = s.get(f"{srv.url}/logout", allow_redirects=False, timeout=10)
    assert r.status_code == 200 and 'method="post"' in r.text
    assert s.get(f"{srv.url}/api/atelier/me", timeout=10).json()["name"] == "alice"
    # another site's form cannot do it either
    r = s.post(f"{srv.url}/logout", headers={"Origin": "http://evil.example"}, allow_redirects=False, timeout=10)
    assert r.status_code == 403
    r = s.post(f"{srv.url}/logout", allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303)
    # the session is over on the server, not only in this browser
    r = requests.get(f"{srv.url}/api/atelier/me", cookies={"atelier_token": cookie}, timeout=10)
    assert r.status_code == 401
    # a password is never stored in clear
    for p in srv.data_dir.rglob("*"):
        if p.is_file() and p.stat().st_size < 50_000_000:
            assert PASSWORD.encode() not in p.read_bytes(), p


def test_failed_sign_ins_are_throttled_per_name(team):
    srv, _ = team
    name = unique("eve").lower()
    cli("users", "create", name, "--password-stdin", "--data-dir", str(srv.data_dir), stdin=PASSWORD + "\n")
    for _ in range(5):
        r = requests.post(f"{srv.url}/login", data={"user": name, "password": "wrong password"},
                          allow_redirects=False, timeout=10)
        assert r.status_code == 401 and "do not match" in r.text
    # now even the right password waits; another name is not affected
    r = requests.post(f"{srv.url}/login", data={"user": name, "password": PASSWORD}, allow_redirects=False, timeout=10)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0 and "try again" in r.text
    r = requests.post(f"{srv.url}/login", data={"user": "alice", "password": PASSWORD}, allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303)
    # an unknown name fails like a wrong password
    r = requests.post(f"{srv.url}/login", data={"user": "nobody-" + name, "password": PASSWORD},
                      allow_redirects=False, timeout=10)
    assert r.status_code == 401 and "do not match" in r.text


def test_the_audit_log_records_changes_and_sign_ins_and_cannot_be_rewritten(team):
    srv, t = team
    exp_name = unique("audited")
    c = as_user(srv, t["alice"], "team-a")
    c.create_experiment(exp_name)
    requests.post(f"{srv.url}/login", data={"user": "alice", "password": "not her password"},
                  allow_redirects=False, timeout=10)
    call(srv, t["alice"], "POST", "/api/atelier/users", json={"name": "mallory", "password": "mallory-pass"})
    call(srv, t["alice"], "POST", "/api/atelier/tokens", json={"name": unique("nb")})

    # only a server admin reads it
    assert call(srv, t["alice"], "GET", "/api/atelier/audit").status_code == 403
    recs = call(srv, t["root"], "GET", "/api/atelier/audit", params={"actor": "alice"}).json()["records"]
    made = [r for r in recs if r["action"] == "POST /api/2.0/mlflow/experiments/create"
            and r["detail"].get("name") == exp_name]
    assert len(made) == 1, recs
    assert (made[0]["project"], made[0]["status"]) == ("team-a", 200)
    assert made[0]["address"].startswith("127.0.0.1:")
    failed = [r for r in recs if r["action"] == "sign-in-failed"]
    assert failed and failed[0]["status"] == 401
    denied = [r for r in recs if r["action"] == "POST /api/atelier/users"]
    assert denied and denied[0]["status"] == 403
    assert denied[0]["detail"] == {"name": "mallory", "password": "(hidden)"}
    tok = [r for r in recs if r["action"] == "POST /api/atelier/tokens"]
    assert tok and tok[0]["status"] == 201
    # metric logging is data, not a change to record
    assert not any("log-" in r["action"] for r in recs)
    # newest first, with ids that only grow
    ids = [r["id"] for r in recs]
    assert ids == sorted(ids, reverse=True)

    # export as JSON Lines, over HTTP and from the command line (which records what it changes)
    r = call(srv, t["root"], "GET", "/api/atelier/audit", params={"format": "jsonl", "action": "sign-in"})
    assert r.headers["content-type"].startswith("application/jsonl")
    import json
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert lines and all("sign-in" in x["action"] for x in lines)
    out = cli("audit", "--actor", "cli", "--data-dir", str(srv.data_dir))
    cli_recs = [json.loads(x) for x in out.splitlines()]
    assert {"atelier users create", "atelier projects grant", "atelier token create"} <= {x["action"] for x in cli_recs}
    grant = [x for x in cli_recs if x["action"] == "atelier projects grant" and x["target"] == "team-a"]
    assert grant and grant[-1]["detail"] == {"user": "alice", "role": "editor"}

    # append-only, in the database itself (the SQLite one; on PostgreSQL the store suite checks it)
    if os.environ.get("ATELIER_TEST_DATABASE_URL"):
        return
    import sqlite3
    db = sqlite3.connect(srv.data_dir / "metadata.db", timeout=10)
    for sql in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    db.close()


def test_the_lists_of_every_projects_folders_are_a_server_admins(team):
    srv, tokens = team
    for path in ("", "projects"):
        r = call(srv, tokens["alice"], "GET", f"/api/2.0/mlflow-artifacts/artifacts?path={path}", workspace="team-a")
        assert r.status_code == 404, (path, r.text)
        r = call(srv, tokens["root"], "GET", f"/api/2.0/mlflow-artifacts/artifacts?path={path}", workspace="team-a")
        assert r.status_code == 200, (path, r.text)
    # the folders at the top are the default project's (another project's are under projects/<name>/):
    # not team-a's, whoever asks from there
    for path in ("capture", "jobs-code", "endpoints", "monitoring", "baselines"):
        for who in ("alice", "root"):
            r = call(srv, tokens[who], "GET", f"/api/2.0/mlflow-artifacts/artifacts?path={path}", workspace="team-a")
            assert r.status_code == 404, (who, path, r.text)
        r = call(srv, tokens["root"], "GET", f"/api/2.0/mlflow-artifacts/artifacts?path={path}")
        assert r.status_code == 200, (path, r.text)
    # her own project's dataset folder is hers
    r = call(srv, tokens["alice"], "GET", "/api/2.0/mlflow-artifacts/artifacts?path=projects/team-a/datasets",
             workspace="team-a")
    assert r.status_code == 200, r.text


def test_the_cli_does_not_hand_a_deleted_projects_name_to_a_new_project(tmp_path):
    at = ["--data-dir", str(tmp_path)]
    cli("projects", "create", "gone", *at)
    cli("projects", "delete", "gone", *at)
    r = subprocess.run([str(atelier_bin()), "projects", "create", "gone", *at],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "retired" in r.stderr and "through the server" in r.stderr, r.stderr
    assert "gone" not in cli("projects", "list", *at).split()
