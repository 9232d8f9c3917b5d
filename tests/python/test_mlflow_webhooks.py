"""MLflow's model-registry webhooks through the real client, delivered to a real HTTP receiver.

The receiver checks each delivery the way MLflow documents it: the `X-MLflow-Signature` header is
`v1,` + base64(HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}")) over the raw body, with the
`X-MLflow-Delivery-Id` and `X-MLflow-Timestamp` headers, and a timestamp no older than five minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import ssl
import subprocess
import threading
import time
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.entities.webhook import WebhookAction, WebhookEntity, WebhookEvent, WebhookStatus
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from _helpers import API, assert_error, unique
from conftest import REFERENCE, start_server

if REFERENCE:
    # the real MLflow server refuses loopback receivers and plain http unless told otherwise
    os.environ["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] = "true"
    os.environ["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"] = "http,https"

MODEL_EVENTS = [
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
]


def verify_mlflow_signature(payload: str, signature: str, secret: str, delivery_id: str, timestamp: str) -> bool:
    """MLflow's documented receiver-side check (docs: "Verifying webhook signatures")."""
    if not signature.startswith("v1,"):
        return False
    signed_content = f"{delivery_id}.{timestamp}.{payload}"
    expected = base64.b64encode(
        hmac.new(secret.encode("utf-8"), signed_content.encode("utf-8"), hashlib.sha256).digest()
    ).decode("utf-8")
    return hmac.compare_digest(signature.removeprefix("v1,"), expected)


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST; `answers[path]` scripts the statuses."""

    def __init__(self, tls: tuple[Path, Path] | None = None):
        """`tls`: (certificate chain, key) to answer over https instead of http."""
        self.lock = threading.Lock()
        self.got: list[dict] = []
        self.answers: dict[str, list[int]] = {}
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with rec.lock:
                    rec.got.append({"path": self.path, "headers": dict(self.headers), "raw": raw})
                    script = rec.answers.get(self.path, [])
                    status = script.pop(0) if script else 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                body = f"answered {status}".encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[dict]:
        with self.lock:
            return [g for g in self.got if g["path"] == path]

    def wait(self, path: str, n: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.at(path)
            if len(got) >= n:
                return got
            time.sleep(0.05)
        got = self.at(path)
        raise AssertionError(f"expected {n} deliveries at {path}, got {len(got)}: {[g['raw'][:200] for g in got]}")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def hdr(delivery: dict, name: str) -> str:
    """A header of a delivery (header names are case-insensitive)."""
    return {k.lower(): v for k, v in delivery["headers"].items()}[name.lower()]


def checked(delivery: dict, secret: str | None) -> dict:
    """The delivery's payload, after checking its headers (and its signature when there is a secret)."""
    h = {k.lower(): v for k, v in delivery["headers"].items()}
    assert h["content-type"] == "application/json"
    delivery_id, ts = h["x-mlflow-delivery-id"], h["x-mlflow-timestamp"]
    assert delivery_id and ts.isdigit()
    assert abs(time.time() - int(ts)) < 300, "timestamp outside MLflow's documented 5-minute window"
    payload = delivery["raw"].decode("utf-8")
    if secret is None:
        assert "x-mlflow-signature" not in h
    else:
        assert verify_mlflow_signature(payload, h["x-mlflow-signature"], secret, delivery_id, ts), h
        assert not verify_mlflow_signature(payload, h["x-mlflow-signature"], secret + "x", delivery_id, ts)
    body = json.loads(payload)
    assert set(body) == {"entity", "action", "timestamp", "data"}
    assert body["timestamp"].endswith("+00:00")
    return body


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # the receiver is on loopback, which webhooks may reach only when the server allows it
    srv = start_server(tmp_path_factory.mktemp("data"), ["--webhook-allowed-hosts", "127.0.0.1"])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


def events(*names: str) -> list[WebhookEvent]:
    return [WebhookEvent.from_str(n) for n in names]


def test_create_get_list_update_delete(client, server, receiver):
    created = client.create_webhook(
        name="crud-hook",
        url=receiver.url("/crud"),
        events=events("model_version.created", "model_version_alias.created"),
        description="first",
        secret="s3cret-value",
    )
    assert created.name == "crud-hook" and created.description == "first"
    assert created.url == receiver.url("/crud")
    assert created.status == WebhookStatus.ACTIVE
    assert created.events == events("model_version.created", "model_version_alias.created")
    assert created.secret is None
    assert created.creation_timestamp == created.last_updated_timestamp > 1_600_000_000_000

    got = client.get_webhook(created.webhook_id)
    assert (got.webhook_id, got.name, got.url, got.events) == (
        created.webhook_id, created.name, created.url, created.events)

    updated = client.update_webhook(
        created.webhook_id,
        name="crud-renamed",
        url=receiver.url("/crud2"),
        events=events("registered_model.created", "model_version.created"),
        description="second",
        secret="another",
        status="DISABLED",
    )
    assert updated.webhook_id == created.webhook_id
    assert (updated.name, updated.url, updated.description) == ("crud-renamed", receiver.url("/crud2"), "second")
    # MLflow's store reads a webhook's events back in key order
    assert updated.events == events("model_version.created", "registered_model.created")
    assert updated.status == WebhookStatus.DISABLED
    assert updated.last_updated_timestamp > created.last_updated_timestamp

    # only the fields sent change
    partial = client.update_webhook(created.webhook_id, name="crud-partial")
    assert (partial.name, partial.url, partial.description, partial.status) == (
        "crud-partial", receiver.url("/crud2"), "second", WebhookStatus.DISABLED)
    assert partial.events == updated.events

    client.delete_webhook(created.webhook_id)
    with pytest.raises(MlflowException, match=f"Webhook with ID {created.webhook_id} not found") as e:
        client.get_webhook(created.webhook_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert created.webhook_id not in {w.webhook_id for w in client.list_webhooks(max_results=1000)}


def test_list_pages_newest_first_without_repeats(client, receiver):
    made = [
        client.create_webhook(name=f"page-{i}", url=receiver.url(f"/page{i}"), events=events("model_version.created"),
                              status="DISABLED").webhook_id
        for i in range(5)
    ]
    seen, token = [], None
    while True:
        page = client.list_webhooks(max_results=2, page_token=token)
        assert len(page) <= 2
        seen += [w.webhook_id for w in page]
        token = page.token
        if not token:
            break
    assert len(seen) == len(set(seen))
    mine = [w for w in seen if w in made]
    assert mine == list(reversed(made)), "newest first"
    for w in made:
        client.delete_webhook(w)


def test_the_secret_is_never_returned(server, receiver):
    secret = "never-show-me-" + unique()
    r = requests.post(f"{server.url}{API}/webhooks", json={
        "name": "hidden-hook", "url": receiver.url("/hidden"), "secret": secret,
        "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}], "status": "DISABLED",
    }, timeout=10)
    assert r.status_code == 200, r.text
    wid = r.json()["webhook"]["webhook_id"]
    answers = [
        r,
        requests.get(f"{server.url}{API}/webhooks/{wid}", timeout=10),
        requests.get(f"{server.url}{API}/webhooks", params={"max_results": 1000}, timeout=10),
        requests.patch(f"{server.url}{API}/webhooks/{wid}", json={"secret": secret + "2"}, timeout=10),
        requests.get(f"{server.url}/ajax-api/2.0/mlflow/webhooks/{wid}", timeout=10),
    ]
    for a in answers:
        assert a.status_code == 200, a.text
        assert secret not in a.text and '"secret"' not in a.text, a.text
    assert r.json()["webhook"]["events"] == [{"entity": "MODEL_VERSION", "action": "CREATED"}]
    assert r.json()["webhook"]["status"] == "DISABLED"
    requests.delete(f"{server.url}{API}/webhooks/{wid}", timeout=10)


def test_unknown_ids_are_resource_does_not_exist(client, server):
    for call in (
        lambda: client.get_webhook("nonexistent"),
        lambda: client.update_webhook(webhook_id="nonexistent", name="new-name"),
        lambda: client.delete_webhook("nonexistent"),
        lambda: client.test_webhook("nonexistent"),
    ):
        with pytest.raises(MlflowException, match="Webhook with ID nonexistent not found") as e:
            call()
        assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert_error(requests.get(f"{server.url}{API}/webhooks/nonexistent", timeout=10), 404, "RESOURCE_DOES_NOT_EXIST")


# the reference run lets MLflow reach private addresses (for the loopback receiver) and https
POLICY = pytest.mark.mlflow_deviates("the reference server is started allowing private IPs")


@pytest.mark.parametrize(("url", "message"), [
    ("   ", "Webhook URL cannot be empty or just whitespace"),
    ("ftp://example.com/hook", "Invalid webhook URL scheme: 'ftp'"),
    ("http://[invalid", "Invalid webhook URL"),
    pytest.param("http://10.1.2.3/hook", "--webhook-allowed-hosts", marks=POLICY),
    pytest.param("http://169.254.169.254/latest", "metadata", marks=POLICY),
])
def test_bad_urls_are_refused_on_create_and_update(client, receiver, url, message):
    with pytest.raises(MlflowException, match=message) as e:
        client.create_webhook(name="bad-url", url=url, events=events("model_version.created"))
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    hook = client.create_webhook(name="good-url", url=receiver.url("/good"), events=events("model_version.created"),
                                 status="DISABLED")
    with pytest.raises(MlflowException, match=message) as e:
        client.update_webhook(hook.webhook_id, url=url)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_webhook(hook.webhook_id).url == receiver.url("/good")
    client.delete_webhook(hook.webhook_id)


@pytest.mark.parametrize(("body", "message"), [
    ({"name": "-bad-", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}, "Webhook name '-bad-' is invalid"),
    ({"name": "x" * 64, "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}, "is invalid"),
    ({"name": "ok", "events": []}, "Webhook events must be a non-empty list"),
    ({"name": "ok"}, "Missing value for required parameter 'events'"),
    ({"name": "ok", "events": [{"entity": "MODEL_VERSION_TAG", "action": "CREATED"}]},
     "Invalid action 'created' for entity 'model_version_tag'. Valid actions are: ['deleted', 'set']"),
    pytest.param({"name": "ok", "events": [{"entity": "RUN", "action": "CREATED"}]}, "Invalid webhook event entity",
                 marks=pytest.mark.mlflow_deviates("MLflow answers an unknown entity with a 500")),
    ({"name": "ok", "events": "model_version.created"}, "events"),
    pytest.param({"name": "ok", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}], "status": "PAUSED"},
                 "Invalid webhook status",
                 marks=pytest.mark.mlflow_deviates("MLflow ignores an unknown status and creates the webhook")),
    ({"events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}, "'name'"),
])
def test_bad_fields_are_400_with_a_message(server, receiver, body, message):
    body = {"url": receiver.url("/fields"), **body}
    err = assert_error(requests.post(f"{server.url}{API}/webhooks", json=body, timeout=10), 400,
                       "INVALID_PARAMETER_VALUE")
    assert message in err["message"], err


def test_list_max_results_is_checked(server):
    for bad in (-1, 1001):
        err = assert_error(requests.get(f"{server.url}{API}/webhooks", params={"max_results": bad}, timeout=10), 400)
        assert "max_results must be between 1 and 1000" in err["message"]


def test_each_registry_event_is_delivered_once_signed(client, receiver):
    secret = "shh-" + unique()
    hook = client.create_webhook(name="model-events", url=receiver.url("/events"), events=events(*MODEL_EVENTS),
                                 secret=secret)
    # subscribed to one event only, and a disabled one: neither gets the others
    only_alias = client.create_webhook(name="only-alias", url=receiver.url("/only-alias"),
                                       events=events("model_version_alias.deleted"))
    client.create_webhook(name="disabled", url=receiver.url("/disabled"), events=events(*MODEL_EVENTS),
                          status="DISABLED")

    name = unique("hooked")
    # an experiment of this server (the active one may be another test's, on another server)
    experiment_id = client.create_experiment(unique("hooks"))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_text("weights", "model/weights.txt")
    run_id = run.info.run_id
    client.create_registered_model(name, tags={"team": "ml"}, description="a model")
    client.create_model_version(name, f"runs:/{run_id}/model", run_id, tags={"stage": "dev"}, description="v1")
    client.set_model_version_tag(name, "1", "quality", "good")
    client.delete_model_version_tag(name, "1", "quality")
    client.set_registered_model_alias(name, "champion", "1")
    client.delete_registered_model_alias(name, "champion")
    # not MLflow events: a registered model's tag, a description
    client.set_registered_model_tag(name, "k", "v")
    client.update_model_version(name, "1", description="changed")

    got = receiver.wait("/events", 6)
    time.sleep(1.0)
    got = receiver.at("/events")
    assert len(got) == 6, [g["raw"] for g in got]
    bodies = [checked(g, secret) for g in got]
    assert len({hdr(g, "X-MLflow-Delivery-Id") for g in got}) == 6
    by_event = {f"{b['entity']}.{b['action']}": b["data"] for b in bodies}
    assert sorted(by_event) == sorted(MODEL_EVENTS)
    assert by_event["registered_model.created"] == {"name": name, "tags": {"team": "ml"}, "description": "a model"}
    mv = by_event["model_version.created"]
    assert mv == {"name": name, "version": "1", "source": mv["source"], "run_id": run_id,
                  "tags": {"stage": "dev"}, "description": "v1"}
    assert mv["source"].startswith(("runs:/", "mlflow-artifacts:", "models:/")), mv
    assert by_event["model_version_tag.set"] == {"name": name, "version": "1", "key": "quality", "value": "good"}
    assert by_event["model_version_tag.deleted"] == {"name": name, "version": "1", "key": "quality"}
    assert by_event["model_version_alias.created"] == {"name": name, "alias": "champion", "version": "1"}
    assert by_event["model_version_alias.deleted"] == {"name": name, "alias": "champion"}
    # the body is encoded as MLflow's json.dumps encodes it
    assert got[0]["raw"].decode() == json.dumps(json.loads(got[0]["raw"]))

    only = receiver.wait("/only-alias", 1)
    assert [checked(g, None)["data"] for g in only] == [{"name": name, "alias": "champion"}]
    assert receiver.at("/disabled") == []
    client.delete_webhook(hook.webhook_id)
    client.delete_webhook(only_alias.webhook_id)


def test_prompt_events_for_a_registered_prompt(client, server, receiver):
    hook = client.create_webhook(
        name="prompts", url=receiver.url("/prompts"),
        events=events("prompt.created", "prompt_tag.set", "prompt_version.created", "prompt_alias.created",
                      "registered_model.created", "model_version.created"))
    name = unique("prompt")
    marker = {"key": "mlflow.prompt.is_prompt", "value": "true"}
    # what MLflow's prompt registry sends (the client refuses prompt tags on plain models)
    r = requests.post(f"{server.url}{API}/registered-models/create", timeout=10,
                      json={"name": name, "tags": [marker, {"key": "team", "value": "nlp"}]})
    assert r.status_code == 200, r.text
    r = requests.post(f"{server.url}{API}/registered-models/set-tag", timeout=10,
                      json={"name": name, "key": "lang", "value": "en"})
    assert r.status_code == 200, r.text
    r = requests.post(f"{server.url}{API}/model-versions/create", timeout=10, json={
        "name": name, "source": "dummy-source",
        "tags": [marker, {"key": "mlflow.prompt.text", "value": "Hi {{x}}"}, {"key": "_mlflow_prompt_type", "value": "text"}]})
    assert r.status_code == 200, r.text
    r = requests.post(f"{server.url}{API}/registered-models/alias", timeout=10,
                      json={"name": name, "alias": "prod", "version": "1"})
    assert r.status_code == 200, r.text
    receiver.wait("/prompts", 4)
    time.sleep(0.5)
    bodies = [checked(g, None) for g in receiver.at("/prompts")]
    # deliveries run in parallel: their order is not the events'
    assert sorted((b["entity"], b["action"], json.dumps(b["data"])) for b in bodies) == sorted([
        ("prompt", "created", json.dumps({"name": name, "tags": {"team": "nlp"}, "description": ""})),
        ("prompt_tag", "set", json.dumps({"name": name, "key": "lang", "value": "en"})),
        ("prompt_version", "created", json.dumps({"name": name, "version": "1", "template": "Hi {{x}}", "tags": {},
                                                  "description": None})),
        ("prompt_alias", "created", json.dumps({"name": name, "alias": "prod", "version": "1"})),
    ])
    client.delete_webhook(hook.webhook_id)


def test_test_webhook_sends_mlflows_example_payload(client, receiver):
    hook = client.create_webhook(name="tested", url=receiver.url("/tested"),
                                 events=events("model_version_tag.set", "registered_model.created"), secret="t0p",
                                 status="DISABLED")
    result = client.test_webhook(hook.webhook_id)
    assert result.success is True
    assert result.response_status == 200
    assert result.response_body == "answered 200"
    assert result.error_message is None
    body = checked(receiver.wait("/tested", 1)[0], "t0p")
    assert (body["entity"], body["action"]) == ("model_version_tag", "set")
    assert body["data"] == {"name": "example_model", "version": "1", "key": "example_key", "value": "example_value"}

    result = client.test_webhook(hook.webhook_id, event=WebhookEvent(WebhookEntity.PROMPT_VERSION, WebhookAction.CREATED))
    assert result.success
    body = checked(receiver.wait("/tested", 2)[1], "t0p")
    assert body["data"]["template"] == "Hello {{name}}!"

    # retried as MLflow's session retries: a 503 then the answer
    receiver.answers["/tested"] = [503]
    result = client.test_webhook(hook.webhook_id)
    assert (result.success, result.response_status) == (True, 200)
    assert len(receiver.wait("/tested", 4)) == 4
    # a 4xx is the answer
    receiver.answers["/tested"] = [404]
    result = client.test_webhook(hook.webhook_id)
    assert (result.success, result.response_status, result.response_body) == (False, 404, "answered 404")
    assert len(receiver.at("/tested")) == 5

    client.update_webhook(hook.webhook_id, url="http://127.0.0.1:9/closed")
    result = client.test_webhook(hook.webhook_id)
    assert result.success is False and result.response_status in (None, 0)
    assert result.error_message.startswith("Failed to test webhook")
    client.delete_webhook(hook.webhook_id)


@pytest.mark.mlflow_deviates("MLflow caches each event's webhooks for 60 s, so a new webhook misses the event")
def test_a_failed_delivery_is_retried_with_the_same_delivery_id(client, receiver):
    receiver.answers["/retry"] = [503, 500]
    hook = client.create_webhook(name="retried", url=receiver.url("/retry"), events=events("registered_model.created"),
                                 secret="r")
    name = unique("retry")
    client.create_registered_model(name)
    got = receiver.wait("/retry", 3, timeout=20)
    time.sleep(0.5)
    got = receiver.at("/retry")
    assert len(got) == 3, "two failures, then delivered; nothing after"
    ids = {hdr(g, "X-MLflow-Delivery-Id") for g in got}
    assert len(ids) == 1
    assert all(checked(g, "r")["data"]["name"] == name for g in got)
    # a 4xx other than 429 is an answer: not retried
    receiver.answers["/retry"] = [404]
    client.create_registered_model(unique("retry"))
    receiver.wait("/retry", 4)
    time.sleep(2.5)
    assert len(receiver.at("/retry")) == 4
    client.delete_webhook(hook.webhook_id)


@pytest.mark.skipif(REFERENCE, reason="several `atelier serve` processes on one database")
def test_two_servers_on_one_database_deliver_each_event_once(tmp_path: Path, receiver):
    data = tmp_path / "shared"
    a = start_server(data, ["--webhook-allowed-hosts", "127.0.0.1"])
    try:
        b = start_server(data, ["--webhook-allowed-hosts", "127.0.0.1"])
        try:
            ca, cb = mlflow.MlflowClient(a.url), mlflow.MlflowClient(b.url)
            hook = ca.create_webhook(name="shared", url=receiver.url("/shared"), events=events("registered_model.created"),
                                     secret="both")
            # the webhook made on one server is the other's too
            assert cb.get_webhook(hook.webhook_id).name == "shared"
            names = [unique("shared") for _ in range(10)]
            for i, n in enumerate(names):
                (ca if i % 2 else cb).create_registered_model(n)
            receiver.wait("/shared", 10)
            time.sleep(1.5)
            got = receiver.at("/shared")
            assert sorted(checked(g, "both")["data"]["name"] for g in got) == sorted(names)
            assert len({hdr(g, "X-MLflow-Delivery-Id") for g in got}) == 10
        finally:
            b.stop()
    finally:
        a.stop()


def make_certificates(d: Path) -> dict[str, Path]:
    """A test CA, a certificate it signs for 127.0.0.1, and a self-signed one nobody trusts (openssl)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Atelier test CA",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "leaf.key", "-out", "leaf.csr")
    (d / "leaf.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "leaf.ext", "-out", "leaf.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", "stranger.key", "-out", "stranger.pem")
    return {k: d / f"{k}" for k in ("ca.pem", "leaf.pem", "leaf.key", "stranger.pem", "stranger.key")}


@pytest.mark.skipif(REFERENCE, reason="the reference server would need the test CA in its own trust bundle")
def test_https_receivers_get_signed_deliveries_and_untrusted_ones_are_refused(tmp_path: Path, monkeypatch):
    certs = make_certificates(tmp_path)
    trusted = Receiver(tls=(certs["leaf.pem"], certs["leaf.key"]))
    stranger = Receiver(tls=(certs["stranger.pem"], certs["stranger.key"]))
    # the server trusts the platform's store, which SSL_CERT_FILE names here (a company CA, say)
    monkeypatch.setenv("SSL_CERT_FILE", str(certs["ca.pem"]))
    srv = start_server(tmp_path / "data", ["--webhook-allowed-hosts", "127.0.0.1"])
    try:
        client = mlflow.MlflowClient(tracking_uri=srv.url)
        hook = client.create_webhook(name="tls", url=trusted.url("/tls"), events=events("registered_model.created"),
                                     secret="s3cret")
        assert hook.url.startswith("https://")
        result = client.test_webhook(hook.webhook_id)
        assert (result.success, result.response_status) == (True, 200), result
        checked(trusted.wait("/tls", 1)[0], "s3cret")
        # a real event goes out over TLS, signed
        client.create_registered_model(unique("tls-model"))
        body = checked(trusted.wait("/tls", 2)[1], "s3cret")
        assert (body["entity"], body["action"]) == ("registered_model", "created")

        # a receiver whose certificate no trusted CA signed: no delivery, the reason named
        other = client.create_webhook(name="stranger", url=stranger.url("/x"), events=events("model_version.created"),
                                      status="DISABLED")
        result = client.test_webhook(other.webhook_id)
        assert result.success is False and result.response_status in (None, 0), result
        assert "certificate" in (result.error_message or "").lower(), result.error_message
        assert stranger.at("/x") == []
    finally:
        srv.stop()
        trusted.close()
        stranger.close()


def test_webhooks_and_registered_models_belong_to_their_project(server, receiver):
    """A webhook hears the registry events of its own project only, and is not there for another
    project; a registered model of one project answers 404 in another, whose searches leave it
    out. Names are unique on the server: taking one another project holds is refused, untouched."""
    admin = MlflowClient(server.url)
    alpha, beta = unique("wa").lower(), unique("wb").lower()
    for w in (alpha, beta):
        admin.create_workspace(w)
    hooks = {}
    try:
        for w in (alpha, beta):
            mlflow.set_workspace(w)
            c = MlflowClient(server.url)
            hooks[w] = c.create_webhook(name=f"hook-{w}", url=receiver.url(f"/ws/{w}"),
                                        events=events("registered_model.created", "model_version.created"))
        mlflow.set_workspace(alpha)
        a = MlflowClient(server.url)
        name = unique("scoped")
        a.create_registered_model(name, tags={"team": "alpha"})
        a.create_model_version(name, "s3://bucket/model", run_id=None)
        a.set_registered_model_alias(name, "champion", 1)
        got = receiver.wait(f"/ws/{alpha}", 2)
        assert {json.loads(g["raw"])["data"]["name"] for g in got} == {name}
        time.sleep(1.0)  # beta's webhook heard nothing of it
        assert receiver.at(f"/ws/{beta}") == []

        mlflow.set_workspace(beta)
        b = MlflowClient(server.url)
        for call in (lambda: b.get_registered_model(name),
                     lambda: b.get_model_version(name, "1"),
                     lambda: b.get_model_version_by_alias(name, "champion"),
                     lambda: b.set_registered_model_tag(name, "team", "beta"),
                     lambda: b.set_registered_model_alias(name, "mine", 1),
                     lambda: b.update_registered_model(name, description="taken"),
                     lambda: b.rename_registered_model(name, name + "-x"),
                     lambda: b.create_model_version(name, "s3://bucket/other", run_id=None),
                     lambda: b.delete_model_version(name, "1"),
                     lambda: b.delete_registered_model(name),
                     lambda: b.get_webhook(hooks[alpha].webhook_id),
                     lambda: b.delete_webhook(hooks[alpha].webhook_id)):
            with pytest.raises(MlflowException) as e:
                call()
            assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST", e.value
        assert name not in [m.name for m in b.search_registered_models()]
        assert b.search_model_versions(f"name = '{name}'") == []
        assert [h.webhook_id for h in b.list_webhooks()] == [hooks[beta].webhook_id]
        with pytest.raises(MlflowException) as e:
            b.create_registered_model(name)
        assert "taken by another project" in str(e.value)

        mlflow.set_workspace(alpha)
        a = MlflowClient(server.url)
        m = a.get_registered_model(name)
        assert (m.tags, m.description, m.aliases) == ({"team": "alpha"}, "", {"champion": "1"})
        assert [h.webhook_id for h in a.list_webhooks()] == [hooks[alpha].webhook_id]
    finally:
        mlflow.set_workspace(None)
        os.environ.pop("MLFLOW_WORKSPACE", None)
