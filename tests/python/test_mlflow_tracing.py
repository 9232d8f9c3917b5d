"""MLflow 3 tracing against the server, with the real `mlflow` client (issue 14).

The client logs a trace in two calls when the server reports MLflow >= 3.4: its spans over
OTLP/HTTP (`POST /v1/traces`, protobuf, `x-mlflow-experiment-id`), then the trace info
(`POST /api/3.0/mlflow/traces`); it reads spans back with `GET /api/3.0/mlflow/traces/get`
(and `batchGet` when searching) because the trace is tagged `mlflow.trace.spansLocation =
TRACKING_STORE`. These tests drive that path, the search grammar, tags, run links, deletes,
hand-made OTLP requests (JSON and protobuf) and the errors. They pass against a real
`mlflow server` too (ATELIER_TEST_REFERENCE=mlflow).
"""

from __future__ import annotations

import time
import uuid

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException

from conftest import REFERENCE

V3 = "/api/3.0/mlflow"


@mlflow.trace(span_type="CHAIN")
def _add_one(x):
    with mlflow.start_span("manual", span_type="TOOL") as span:
        span.set_inputs({"q": x})
        span.set_attribute("weight", 0.5)
        span.set_attribute("labels", ["a", "b"])
        span.set_outputs({"r": x + 1})
    return x + 1


@mlflow.trace(name="pipeline")
def _pipeline(x):
    return _add_one(x) * 2


@mlflow.trace(name="explode")
def _explode(x):
    raise ValueError(f"bad {x}")


def _flush():
    mlflow.flush_trace_async_logging()


def _ids(traces):
    return [t.info.trace_id for t in traces]


def _search(exp, **kw):
    return mlflow.search_traces(locations=[exp], return_type="list", **kw)


def _log_pipeline(x):
    _pipeline(x)
    _flush()
    return mlflow.get_last_active_trace_id()


def test_a_traced_call_comes_back_as_its_span_tree(experiment_id):
    assert _pipeline(3) == 8
    _flush()
    tid = mlflow.get_last_active_trace_id()
    trace = mlflow.MlflowClient().get_trace(tid)
    info = trace.info
    assert info.trace_id == tid and info.experiment_id == experiment_id
    assert info.state.value == "OK"
    assert info.tags["mlflow.traceName"] == "pipeline"
    assert info.execution_duration is not None and info.execution_duration >= 0
    assert '"x": 3' in info.request_preview and info.response_preview == "8"

    spans = {s.name: s for s in trace.data.spans}
    assert set(spans) == {"pipeline", "_add_one", "manual"}
    root = spans["pipeline"]
    assert root.parent_id is None
    assert spans["_add_one"].parent_id == root.span_id
    assert spans["manual"].parent_id == spans["_add_one"].span_id
    assert all(s.trace_id == tid for s in trace.data.spans)
    assert root.inputs == {"x": 3} and root.outputs == 8
    assert spans["_add_one"].span_type == "CHAIN"
    manual = spans["manual"]
    assert manual.span_type == "TOOL"
    assert manual.inputs == {"q": 3} and manual.outputs == {"r": 4}
    assert manual.get_attribute("weight") == 0.5
    assert manual.get_attribute("labels") == ["a", "b"]
    assert manual.start_time_ns >= root.start_time_ns and manual.end_time_ns <= root.end_time_ns

    # the fluent call and the search return the same spans
    assert {s.span_id for s in mlflow.get_trace(tid).data.spans} == {s.span_id for s in trace.data.spans}
    found = _search(experiment_id)
    assert _ids(found) == [tid]
    assert {s.name for s in found[0].data.spans} == set(spans)


def test_search_filters_order_and_pages(experiment_id):
    client = mlflow.MlflowClient()
    first = _log_pipeline(1)
    time.sleep(0.05)
    middle_ms = int(time.time() * 1000)
    time.sleep(0.05)
    with pytest.raises(ValueError):
        _explode(2)
    _flush()
    failed = mlflow.get_last_active_trace_id()
    last = _log_pipeline(3)
    client.set_trace_tag(last, "team", "blue")

    assert set(_ids(_search(experiment_id))) == {first, failed, last}
    assert _ids(_search(experiment_id, filter_string="trace.status = 'ERROR'")) == [failed]
    assert set(_ids(_search(experiment_id, filter_string="trace.status = 'OK'"))) == {first, last}
    assert set(_ids(_search(experiment_id, filter_string=f"trace.timestamp_ms > {middle_ms}"))) == {failed, last}
    assert _ids(_search(experiment_id, filter_string=f"trace.timestamp_ms < {middle_ms}")) == [first]
    assert _ids(_search(experiment_id, filter_string="trace.name = 'explode'")) == [failed]
    assert _ids(_search(experiment_id, filter_string="tag.team = 'blue'")) == [last]
    assert _ids(_search(experiment_id, filter_string="tag.team = 'blue' AND trace.status = 'OK'")) == [last]
    assert _ids(_search(experiment_id, filter_string="trace.execution_time_ms >= 0 AND tag.team = 'red'")) == []
    assert set(_ids(_search(experiment_id, filter_string="span.name = 'manual'"))) == {first, last}
    assert set(_ids(_search(experiment_id, filter_string="span.type = 'TOOL'"))) == {first, last}
    assert _ids(_search(experiment_id, filter_string="span.status = 'ERROR'")) == [failed]
    assert _ids(_search(experiment_id, filter_string="trace.text LIKE '%explode%'")) == [failed]
    assert set(_ids(_search(experiment_id, filter_string="span.content ILIKE '%MANUAL%'"))) == {first, last}
    assert _ids(_search(experiment_id, order_by=["timestamp_ms ASC"])) == [first, failed, last]
    assert _ids(_search(experiment_id, order_by=["timestamp_ms DESC"])) == [last, failed, first]

    err = _search(experiment_id, filter_string="trace.status = 'ERROR'")[0]
    root = next(s for s in err.data.spans if s.parent_id is None)
    assert root.status.status_code.value == "ERROR"
    assert any(e.name == "exception" for e in root.events)

    # pages: no trace twice, none lost
    seen, token = [], None
    for _ in range(5):
        page = client.search_traces(locations=[experiment_id], max_results=1, page_token=token,
                                    order_by=["timestamp_ms ASC"])
        seen += _ids(page)
        token = page.token
        if not token:
            break
    assert seen == [first, failed, last]


def test_tags_are_set_and_deleted(experiment_id):
    client = mlflow.MlflowClient()
    tid = _log_pipeline(5)
    client.set_trace_tag(tid, "stage", "review")
    assert client.get_trace(tid).info.tags["stage"] == "review"
    client.set_trace_tag(tid, "stage", "done")
    assert client.get_trace(tid).info.tags["stage"] == "done"
    client.delete_trace_tag(tid, "stage")
    assert "stage" not in client.get_trace(tid).info.tags
    assert _ids(_search(experiment_id, filter_string="tag.stage = 'done'")) == []
    with pytest.raises(MlflowException) as e:
        client.delete_trace_tag(tid, "stage")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_traces_belong_to_the_run_they_ran_in_and_to_runs_they_are_linked_to(experiment_id):
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        in_run = _log_pipeline(7)
    outside = _log_pipeline(8)
    assert client.get_trace(in_run).info.request_metadata["mlflow.sourceRun"] == run.info.run_id
    assert _ids(_search(experiment_id, run_id=run.info.run_id)) == [in_run]

    other = client.create_run(experiment_id)
    client.link_traces_to_run([outside], other.info.run_id)
    assert _ids(_search(experiment_id, run_id=other.info.run_id)) == [outside]
    assert _ids(_search(experiment_id, filter_string=f"trace.run_id = '{other.info.run_id}'")) == [outside]


@pytest.mark.mlflow_deviates("MLflow links to a run that does not exist and answers BAD_REQUEST "
                             "for a tag on a trace that does not exist")
def test_links_and_tags_need_what_they_name_to_exist(experiment_id):
    client = mlflow.MlflowClient()
    tid = _log_pipeline(1)
    with pytest.raises(MlflowException) as e:
        client.link_traces_to_run([tid], "0" * 32)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.link_traces_to_run(["tr-" + "0" * 32], client.create_run(experiment_id).info.run_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.set_trace_tag("tr-" + "0" * 32, "k", "v")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.mlflow_deviates("MLflow stores a trace whose request_time is not a time (as 1970) "
                             "and answers some of these with a 5xx")
def test_a_trace_info_with_a_bad_time_or_state_is_refused(server, experiment_id):
    def start(**fields):
        info = {"trace_id": "tr-" + uuid.uuid4().hex, "state": "OK", "request_time": "2024-01-01T00:00:00Z",
                "trace_location": {"type": "MLFLOW_EXPERIMENT",
                                   "mlflow_experiment": {"experiment_id": experiment_id}}}
        info.update(fields)
        return requests.post(f"{server.url}{V3}/traces", json={"trace": {"trace_info": info}}, timeout=10)

    assert start().status_code == 200
    for bad in [{"request_time": "yesterday"}, {"execution_duration": "soon"}, {"state": "MAYBE"},
                {"trace_location": {"type": "UC_SCHEMA"}}, {"tags": {"k": 1}}]:
        r = start(**bad)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (bad, r.text)
        assert r.json()["message"], bad


def test_traces_are_deleted_by_id_and_by_age(experiment_id):
    client = mlflow.MlflowClient()
    old = [_log_pipeline(i) for i in range(3)]
    time.sleep(0.05)
    cutoff = int(time.time() * 1000)
    time.sleep(0.05)
    new = _log_pipeline(9)

    assert client.delete_traces(experiment_id, trace_ids=[old[1]]) == 1
    assert set(_ids(_search(experiment_id))) == {old[0], old[2], new}
    with pytest.raises(MlflowException) as e:
        client.get_trace(old[1])
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    # the oldest first, at most max_traces of them
    assert client.delete_traces(experiment_id, max_timestamp_millis=cutoff, max_traces=1) == 1
    assert set(_ids(_search(experiment_id))) == {old[2], new}
    assert client.delete_traces(experiment_id, max_timestamp_millis=cutoff) == 1
    assert _ids(_search(experiment_id)) == [new]


def _hex(n: int) -> str:
    return uuid.uuid4().hex[: 2 * n]


def test_an_otlp_json_request_made_by_hand_becomes_a_trace(server, experiment_id):
    trace_hex, root_id, child_id = uuid.uuid4().hex, _hex(8), _hex(8)
    t0 = time.time_ns()
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "hand-made"}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": [
            {"traceId": trace_hex, "spanId": root_id, "name": "handler", "kind": 2,
             "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 5_000_000),
             "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}},
                            {"key": "retries", "value": {"intValue": "2"}}],
             "status": {"code": 1}},
            {"traceId": trace_hex, "spanId": child_id, "parentSpanId": root_id, "name": "db",
             "startTimeUnixNano": str(t0 + 1_000_000), "endTimeUnixNano": str(t0 + 2_000_000),
             "attributes": [{"key": "rows", "value": {"doubleValue": 1.5}}],
             "events": [{"name": "fetched", "timeUnixNano": str(t0 + 1_500_000)}],
             "status": {"code": 2, "message": "slow"}},
        ]}],
    }]}
    r = requests.post(f"{server.url}/v1/traces", json=body,
                      headers={"x-mlflow-experiment-id": experiment_id}, timeout=20)
    assert r.status_code == 200, r.text

    tid = f"tr-{trace_hex}"
    trace = mlflow.get_trace(tid)
    assert trace is not None, "the spans made a trace"
    assert trace.info.experiment_id == experiment_id
    assert trace.info.state.value == "OK"
    assert trace.info.request_time == t0 // 1_000_000
    assert trace.info.execution_duration == 5
    assert trace.info.tags["service.name"] == "hand-made"
    spans = {s.name: s for s in trace.data.spans}
    assert spans["handler"].parent_id is None and spans["db"].parent_id == root_id
    assert spans["handler"].get_attribute("http.method") == "GET"
    assert spans["handler"].get_attribute("retries") == 2
    assert spans["db"].get_attribute("rows") == 1.5
    assert spans["db"].status.status_code.value == "ERROR"
    assert spans["db"].status.description == "slow"
    assert [e.name for e in spans["db"].events] == ["fetched"]
    assert spans["db"].start_time_ns == t0 + 1_000_000
    if not REFERENCE:
        # MLflow leaves a trace made of OTLP spans alone unnamed; Atelier names it after its root span
        assert trace.info.tags["mlflow.traceName"] == "handler"
        assert _ids(_search(experiment_id, filter_string="trace.name = 'handler'")) == [tid]


def test_an_otlp_protobuf_request_becomes_a_trace(server, experiment_id):
    pb = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    trace_bytes, span_bytes = uuid.uuid4().bytes, uuid.uuid4().bytes[:8]
    req = pb.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "proto-svc"
    span = rs.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = trace_bytes, span_bytes, "proto-root"
    t0 = time.time_ns()
    span.start_time_unix_nano, span.end_time_unix_nano = t0, t0 + 3_000_000
    span.status.code = 2  # STATUS_CODE_ERROR
    a = span.attributes.add()
    a.key = "payload"
    inner = a.value.kvlist_value.values.add()
    inner.key, inner.value.bool_value = "ok", True
    b = span.attributes.add()
    b.key = "mlflow.spanInputs"
    b.value.string_value = '{"question": "why"}'
    r = requests.post(f"{server.url}/v1/traces", data=req.SerializeToString(), timeout=20,
                      headers={"Content-Type": "application/x-protobuf",
                               "x-mlflow-experiment-id": experiment_id})
    assert r.status_code == 200, r.text

    tid = f"tr-{trace_bytes.hex()}"
    trace = mlflow.MlflowClient().get_trace(tid)
    assert trace.info.state.value == "ERROR"
    assert trace.info.tags["service.name"] == "proto-svc"
    assert trace.info.execution_duration == 3
    (root,) = trace.data.spans
    assert root.name == "proto-root" and root.span_id == span_bytes.hex()
    assert root.get_attribute("payload") == {"ok": True}
    assert root.inputs == {"question": "why"}, "JSON text in a string attribute is read as MLflow reads it"
    assert _ids(_search(experiment_id, filter_string="trace.status = 'ERROR'")) == [tid]


def _mlflow_error(r: requests.Response) -> str:
    try:
        return r.json().get("error_code", "") or str(r.json())
    except ValueError:
        return r.text


@pytest.mark.mlflow_deviates("MLflow answers FastAPI's {'detail': …}, not its own error body")
def test_bad_otlp_requests_are_4xx_with_a_message(server, experiment_id):
    url = f"{server.url}/v1/traces"
    hdr = {"x-mlflow-experiment-id": experiment_id}
    r = requests.post(url, data=b"\x0a\xff\xff", timeout=10,
                      headers={**hdr, "Content-Type": "application/x-protobuf"})
    assert r.status_code == 400 and "Invalid OpenTelemetry format" in r.text, r.text
    r = requests.post(url, data=b"{not json", timeout=10, headers={**hdr, "Content-Type": "application/json"})
    assert r.status_code == 400 and "Invalid OpenTelemetry format" in r.text, r.text
    r = requests.post(url, json={"resourceSpans": []}, headers=hdr, timeout=10)
    assert r.status_code == 400 and "no spans" in r.text, r.text
    r = requests.post(url, data=b"x", timeout=10, headers={**hdr, "Content-Type": "text/plain"})
    assert 400 <= r.status_code < 500 and "Content-Type" in r.text, r.text
    bad_id = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "zz", "spanId": _hex(8), "name": "x", "startTimeUnixNano": "1"}]}]}]}
    r = requests.post(url, json=bad_id, headers=hdr, timeout=10)
    assert r.status_code == 400 and "traceId" in r.text or "trace_id" in r.text, r.text
    ok_span = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": uuid.uuid4().hex, "spanId": _hex(8), "name": "x", "startTimeUnixNano": "1"}]}]}]}
    r = requests.post(url, json=ok_span, timeout=10)
    assert r.status_code == 400 and "x-mlflow-experiment-id" in r.text.lower(), r.text
    r = requests.post(url, json=ok_span, headers={"x-mlflow-experiment-id": "987654"}, timeout=10)
    assert r.status_code == 404 and _mlflow_error(r) == "RESOURCE_DOES_NOT_EXIST", r.text


def test_unknown_traces_and_bad_requests_are_mlflow_errors(server, experiment_id):
    client = mlflow.MlflowClient()
    missing = "tr-" + "0" * 32
    with pytest.raises(MlflowException) as e:
        client.get_trace(missing)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    r = requests.get(f"{server.url}{V3}/traces/{missing}", timeout=10)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert missing in r.json()["message"]
    r = requests.get(f"{server.url}{V3}/traces/get", params={"trace_id": missing}, timeout=10)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    with pytest.raises(MlflowException) as e:
        _search(experiment_id, filter_string="trace.status = 'OK' OR trace.status = 'ERROR'")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        _search(experiment_id, filter_string="trace.nonsense = 'x'")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"

    r = requests.post(f"{server.url}/api/2.0/mlflow/traces/delete-traces", timeout=10,
                      json={"experiment_id": experiment_id, "max_timestamp_millis": 1, "request_ids": ["a"]})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", r.text


@pytest.mark.skipif(REFERENCE, reason="Atelier's own store")
def test_start_trace_keeps_the_clients_info_over_what_spans_said(server, experiment_id):
    """The client's TraceInfo (sent last) decides state, times and tags; spans sent afterwards
    (a late background span) are added without rewriting them."""
    trace_hex = uuid.uuid4().hex
    tid = f"tr-{trace_hex}"
    root = _hex(8)
    t0 = time.time_ns()
    span = {"traceId": trace_hex, "spanId": root, "name": "root",
            "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 1_000_000), "status": {"code": 1}}
    hdr = {"x-mlflow-experiment-id": experiment_id}
    assert requests.post(f"{server.url}/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]},
                         headers=hdr, timeout=10).status_code == 200
    info = {"trace_id": tid,
            "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}},
            "request_time": "2020-01-02T03:04:05.678Z", "execution_duration": "2.5s", "state": "ERROR",
            "tags": {"mlflow.traceName": "named-by-client"}, "trace_metadata": {"who": "me"}}
    r = requests.post(f"{server.url}{V3}/traces", json={"trace": {"trace_info": info}}, timeout=10)
    assert r.status_code == 200, r.text
    got = r.json()["trace"]["trace_info"]
    assert got["request_time"] == "2020-01-02T03:04:05.678Z" and got["execution_duration"] == "2.500s"
    assert got["tags"]["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    late = dict(span, spanId=_hex(8), parentSpanId=root, name="late")
    assert requests.post(f"{server.url}/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": [late]}]}]},
                         headers=hdr, timeout=10).status_code == 200
    trace = mlflow.get_trace(tid)
    assert trace.info.state.value == "ERROR" and trace.info.request_time == 1577934245678
    assert trace.info.tags["mlflow.traceName"] == "named-by-client"
    assert trace.info.request_metadata["who"] == "me"
    assert {s.name for s in trace.data.spans} == {"root", "late"}


def test_feedback_and_expectations_are_logged_updated_overridden_and_deleted(experiment_id):
    from mlflow.entities import AssessmentSource, Feedback

    tid = _log_pipeline(4)
    human = AssessmentSource(source_type="HUMAN", source_id="reviewer")
    fb = mlflow.log_feedback(trace_id=tid, name="quality", value=0.5, rationale="meh", source=human,
                             metadata={"round": "1"})
    ex = mlflow.log_expectation(trace_id=tid, name="answer", value={"result": 10})
    assert fb.assessment_id and fb.assessment_id != ex.assessment_id

    got = mlflow.get_assessment(tid, fb.assessment_id)
    assert (got.name, got.value, got.rationale, got.trace_id) == ("quality", 0.5, "meh", tid)
    assert got.source.source_id == "reviewer" and got.metadata == {"round": "1"} and got.valid
    assert mlflow.get_assessment(tid, ex.assessment_id).value == {"result": 10}

    updated = mlflow.update_assessment(tid, fb.assessment_id, Feedback(name="quality", value=0.75,
                                                                       rationale="better"))
    assert (updated.value, updated.rationale) == (0.75, "better")
    assert mlflow.get_assessment(tid, fb.assessment_id).value == 0.75

    new = mlflow.override_feedback(trace_id=tid, assessment_id=fb.assessment_id, value=1.0,
                                   rationale="fixed", source=human)
    assert new.overrides == fb.assessment_id
    assert mlflow.get_assessment(tid, fb.assessment_id).valid is False
    by_id = {a.assessment_id: a for a in mlflow.get_trace(tid).info.assessments}
    assert set(by_id) == {fb.assessment_id, ex.assessment_id, new.assessment_id}
    assert by_id[new.assessment_id].value == 1.0 and by_id[new.assessment_id].valid

    mlflow.delete_assessment(tid, new.assessment_id)
    assert mlflow.get_assessment(tid, fb.assessment_id).valid is True, "the overridden one is back"
    with pytest.raises(MlflowException) as e:
        mlflow.get_assessment(tid, new.assessment_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_feedback_logged_inside_a_trace_arrives_with_it(experiment_id):
    @mlflow.trace(name="judged")
    def judged():
        mlflow.log_feedback(trace_id=mlflow.get_active_trace_id(), name="inline", value=True)
        return 1

    judged()
    _flush()
    tid = mlflow.get_last_active_trace_id()
    (a,) = mlflow.get_trace(tid).info.assessments
    assert (a.name, a.value, a.trace_id) == ("inline", True, tid)
    assert mlflow.get_assessment(tid, a.assessment_id).value is True


def test_compressed_otlp_bodies_and_the_run_header(server, experiment_id):
    import gzip
    import json
    import zlib

    run = mlflow.MlflowClient().create_run(experiment_id)
    hdr = {"x-mlflow-experiment-id": experiment_id, "Content-Type": "application/json"}
    tids = []
    for encoding, pack in [("gzip", gzip.compress), ("deflate", zlib.compress)]:
        trace_hex = uuid.uuid4().hex
        body = {"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": trace_hex, "spanId": _hex(8), "name": f"packed-{encoding}",
             "startTimeUnixNano": str(time.time_ns()), "endTimeUnixNano": str(time.time_ns() + 1000)}]}]}]}
        r = requests.post(f"{server.url}/v1/traces", data=pack(json.dumps(body).encode()), timeout=10,
                          headers={**hdr, "Content-Encoding": encoding, "x-mlflow-run-id": run.info.run_id})
        assert r.status_code == 200, (encoding, r.text)
        tids.append(f"tr-{trace_hex}")
        assert mlflow.get_trace(tids[-1]).data.spans[0].name == f"packed-{encoding}"
    assert set(_ids(_search(experiment_id, run_id=run.info.run_id))) == set(tids)

    r = requests.post(f"{server.url}/v1/traces", data=b"not gzip", timeout=10,
                      headers={**hdr, "Content-Encoding": "gzip"})
    assert 400 <= r.status_code < 500, r.text


def test_traces_are_found_by_their_feedback_and_expectations(experiment_id):
    good, bad, none = _log_pipeline(1), _log_pipeline(2), _log_pipeline(3)
    mlflow.log_feedback(trace_id=good, name="verdict", value="yes")
    mlflow.log_feedback(trace_id=bad, name="verdict", value="no")
    mlflow.log_feedback(trace_id=good, name="score", value=0.9)
    old = mlflow.log_feedback(trace_id=bad, name="score", value=0.95)
    mlflow.override_feedback(trace_id=bad, assessment_id=old.assessment_id, value=0.2)
    mlflow.log_expectation(trace_id=good, name="answer", value="42")

    def found(f):
        return set(_ids(_search(experiment_id, filter_string=f)))

    assert found("feedback.verdict = 'yes'") == {good}
    assert found("feedback.verdict != 'yes'") == {bad}
    assert found("feedback.score > 0.5") == {good}, "the overridden 0.95 no longer counts"
    assert found("feedback.score <= 0.5") == {bad}
    assert found("feedback.verdict IS NOT NULL") == {good, bad}
    assert found("feedback.verdict IS NULL") == {none}
    assert found("expectation.answer = '42'") == {good}
    assert found("feedback.verdict = 'yes' AND trace.status = 'OK'") == {good}
