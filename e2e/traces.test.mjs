// Traces in the Studio: traces made by the real mlflow client's @mlflow.trace (with token usage, an
// event, an error and assessments) and by an OpenTelemetry SDK with the OTLP/HTTP exporter, shown in
// the experiment's Traces tab (latency, status, tokens, the trace-search filter and its 400 message,
// paging, live updates) and on the trace page (span tree, timeline, span inputs/outputs/attributes/
// events, assessments); layout checked at 1280 and 1920 px.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startServer, launchBrowser, newPage, until, fullShot, call, pythonBin, layoutProblems } from './harness.mjs';

let server, browser, page, expId;
const errors = [];
const ids = {};
const shot = (name) => fullShot(page, `/tmp/studio-traces-${name}.png`, 4000);
const api = (method, path, body, headers) => call(server.url, method, path, body, headers);

// Run with the real clients: `mlflow` mode uses @mlflow.trace, mlflow.log_feedback and
// mlflow.log_expectation; `otel` mode is the OpenTelemetry SDK with its OTLP/HTTP exporter (one
// export per span, so a trace arrives in several requests).
const PRODUCER = String.raw`
import json, sys, time
url, exp_id, mode = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
if mode == "mlflow":
    import mlflow
    from mlflow.entities import SpanType, SpanEvent, AssessmentSource
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(experiment_id=exp_id)

    @mlflow.trace(span_type=SpanType.RETRIEVER)
    def retrieve(query):
        time.sleep(0.02)
        return [{"doc": "Paris is the capital of France", "score": 0.93}]

    @mlflow.trace(span_type=SpanType.CHAT_MODEL)
    def chat(query, docs):
        span = mlflow.get_current_active_span()
        span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 42, "output_tokens": 8, "total_tokens": 50})
        span.set_attribute("model", "tiny-llm")
        span.add_event(SpanEvent("cache_miss", attributes={"key": query}))
        time.sleep(0.04)
        return "Paris"

    @mlflow.trace(name="answer")
    def answer(question):
        docs = retrieve(question)
        return {"answer": chat(question, docs)}

    @mlflow.trace(name="broken")
    def broken(x):
        raise ValueError("the tool failed")

    n = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    for i in range(n):
        answer("What is the capital of France?" if i == 0 else "question %d" % i)
        if i == 0:
            ok = mlflow.get_last_active_trace_id()
    try:
        broken(1)
    except ValueError:
        pass
    bad = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    mlflow.log_feedback(trace_id=ok, name="correct", value=True, rationale="Paris is right",
                        source=AssessmentSource(source_type="HUMAN", source_id="reviewer@example.com"))
    mlflow.log_expectation(trace_id=ok, name="expected_answer", value="Paris")
    out = {"ok": ok, "error": bad}
else:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.trace import Status, StatusCode
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=url + "/v1/traces", headers={"x-mlflow-experiment-id": exp_id})))
    tracer = provider.get_tracer("e2e-otel")
    with tracer.start_as_current_span("otel-agent") as root:
        root.set_attribute("mlflow.spanInputs", json.dumps({"query": "weather in Lyon"}))
        root.set_attribute("mlflow.spanOutputs", json.dumps({"text": "sunny"}))
        root.set_attribute("mlflow.spanType", json.dumps("AGENT"))
        with tracer.start_as_current_span("otel-llm") as llm:
            llm.set_attribute("mlflow.spanType", json.dumps("LLM"))
            llm.set_attribute("mlflow.chat.tokenUsage", json.dumps({"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}))
            llm.add_event("retry", {"attempt": 2})
            time.sleep(0.03)
        with tracer.start_as_current_span("otel-tool") as tool:
            tool.set_status(Status(StatusCode.OK))
            time.sleep(0.01)
        root.set_status(Status(StatusCode.OK))
        out = {"otel": "tr-" + format(root.get_span_context().trace_id, "032x")}
    provider.shutdown()
print(json.dumps(out))
`;

function produce(mode, ...args) {
  return new Promise((ok, fail) => {
    execFile(pythonBin(), ['-c', PRODUCER, server.url, expId, mode, ...args.map(String)], {
      env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true', PYTHONUNBUFFERED: '1' }, timeout: 180000,
    }, (err, stdout, stderr) => {
      if (err) return fail(new Error(`${mode} producer failed: ${err.message}\n${stderr}`));
      const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (!line) return fail(new Error(`${mode} producer printed no JSON:\n${stdout}\n${stderr}`));
      ok(JSON.parse(line));
    });
  });
}
const rowOf = (id) => page.locator(`[data-testid=trace-row][data-trace-id="${id}"]`);
const OVERLAP = ['.toolbar', '.tr-bottom', '.facts', '.tr-split', '.tr-detail-head'];

async function checkLayout(what) {
  for (const width of [1280, 1920]) {
    await page.setViewportSize({ width, height: 900 });
    await page.waitForTimeout(150);
    assert.deepEqual(await layoutProblems(page, OVERLAP), [], `${what} at ${width} px`);
  }
  await page.setViewportSize({ width: 1360, height: 900 });
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await newPage(browser, errors);
  const r = await api('POST', '/api/2.0/mlflow/experiments/create', { name: 'rag-agent' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  expId = r.body.experiment_id;
  Object.assign(ids, await produce('mlflow', 1));
  Object.assign(ids, await produce('otel'));
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  // the 400 of the bad filter the tests send on purpose, and the unknown trace's 404, are not bugs
  assert.deepEqual(errors.filter((e) => !/Failed to load resource: the server responded with a status of (400|404)/.test(e)), [], 'no page errors');
});

test('the Traces tab lists both clients\' traces with latency, status and tokens', async () => {
  await page.goto(`${server.url}/experiments/${expId}`);
  await page.click('[data-testid=traces-tab]');
  await page.waitForURL(`**/experiments/${expId}/traces`);
  await page.waitForSelector('[data-testid=trace-row]');
  assert.equal(await page.locator('[data-testid=trace-row]').count(), 3);
  assert.equal(await page.textContent('[data-testid=experiment-name]'), 'rag-agent');
  // the @mlflow.trace call: its request, OK, its latency (the spans slept 60 ms), 50 tokens
  const ok = rowOf(ids.ok);
  assert.match(await ok.locator('[data-testid=trace-link]').textContent(), /capital of France/);
  assert.equal(await ok.locator('[data-testid=trace-status]').textContent(), 'OK');
  const lat = await ok.locator('[data-testid=trace-latency]').textContent();
  const ms = /([\d.]+) (ms|s)$/.exec(lat);
  assert.ok(ms && Number(ms[1]) * (ms[2] === 's' ? 1000 : 1) >= 60, lat);
  assert.equal(await ok.locator('[data-testid=trace-tokens]').textContent(), '50');
  // the raised exception: ERROR, no tokens
  const bad = rowOf(ids.error);
  assert.equal(await bad.locator('[data-testid=trace-status]').textContent(), 'ERROR');
  assert.equal(await bad.locator('[data-testid=trace-tokens]').count(), 0);
  // the OTLP exporter's trace: its root span's input, and the LLM span's tokens summed by the server
  const otel = rowOf(ids.otel);
  assert.match(await otel.locator('[data-testid=trace-link]').textContent(), /weather in Lyon/);
  assert.equal(await otel.locator('[data-testid=trace-status]').textContent(), 'OK');
  assert.equal(await otel.locator('[data-testid=trace-tokens]').textContent(), '120');
  await shot('list');
  await checkLayout('the traces list');
});

test('the filter box takes MLflow\'s trace-search grammar and shows the server\'s 400 under it', async () => {
  await page.goto(`${server.url}/experiments/${expId}/traces`);
  await page.waitForSelector('[data-testid=trace-row]');
  await page.fill('[data-testid=traces-filter]', "trace.status = 'ERROR'");
  await page.press('[data-testid=traces-filter]', 'Enter');
  await until(async () => (await page.locator('[data-testid=trace-row]').count()) === 1, 'one ERROR trace');
  assert.equal(await page.getAttribute('[data-testid=trace-row]', 'data-trace-id'), ids.error);
  assert.match(page.url(), /filter=trace.status/);
  // a span attribute and a feedback value
  await page.fill('[data-testid=traces-filter]', "span.name = 'otel-llm'");
  await page.click('[data-testid=traces-search]');
  await until(async () => (await page.getAttribute('[data-testid=trace-row]', 'data-trace-id')) === ids.otel &&
    (await page.locator('[data-testid=trace-row]').count()) === 1, 'the OTLP trace by span name');
  await page.fill('[data-testid=traces-filter]', "feedback.correct = 'true'");
  await page.click('[data-testid=traces-search]');
  await until(async () => (await page.getAttribute('[data-testid=trace-row]', 'data-trace-id')) === ids.ok &&
    (await page.locator('[data-testid=trace-row]').count()) === 1, 'the trace with feedback');
  // a bad filter: the server's message under the box, and no rows
  await page.fill('[data-testid=traces-filter]', 'trace.bogus = 1');
  await page.click('[data-testid=traces-search]');
  await page.waitForSelector('[data-testid=traces-filter-error]:not([hidden])');
  const msg = await page.textContent('[data-testid=traces-filter-error]');
  assert.match(msg, /bogus/);
  assert.equal(await page.locator('[data-testid=trace-row]').count(), 0);
  await shot('filter-error');
  await checkLayout('the filter error');
  // the filter survives a reload (it lives in the URL)
  await page.fill('[data-testid=traces-filter]', "trace.status = 'OK'");
  await page.click('[data-testid=traces-search]');
  await until(async () => (await page.locator('[data-testid=trace-row]').count()) === 2, 'two OK traces');
  await page.reload();
  await until(async () => (await page.locator('[data-testid=trace-row]').count()) === 2, 'two OK traces after reload');
  assert.equal(await page.inputValue('[data-testid=traces-filter]'), "trace.status = 'OK'");
  await page.click('[data-testid=traces-clear]');
  await until(async () => (await page.locator('[data-testid=trace-row]').count()) === 3, 'all traces again');
});

test('sorting by latency and paging through more traces than a page holds', async () => {
  await page.goto(`${server.url}/experiments/${expId}/traces`);
  await page.waitForSelector('[data-testid=trace-row]');
  await page.click('[data-testid=col-latency]');
  await until(async () => /order=execution_time_ms/.test(page.url()), 'order in the URL');
  await until(async () => (await page.getAttribute('[data-testid=trace-row]', 'data-trace-id')) !== ids.error, 'slowest first');
  const lats = await page.locator('[data-testid=trace-latency]').allTextContents();
  const msOf = (t) => { const m = /([\d.]+) (ms|s)$/.exec(t); return m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : -1; };
  for (let i = 1; i < lats.length; i++) assert.ok(msOf(lats[i - 1]) >= msOf(lats[i]), lats.join(', '));
  // 55 more traces: the page holds 50; while the page is open, so they also arrive live
  const more = produce('mlflow', 54);
  await until(async () => (await page.locator('[data-testid=trace-row]').count()) === 50, 'a full first page (live)', 120000);
  await more;
  await page.click('[data-testid=traces-clear]');
  await until(async () => !(await page.isDisabled('[data-testid=traces-next]')), 'a next page');
  assert.equal(await page.isDisabled('[data-testid=traces-prev]'), true);
  await page.click('[data-testid=traces-next]');
  await until(async () => (await page.textContent('[data-testid=traces-page]')) === 'Page 2', 'page 2');
  const second = await page.locator('[data-testid=trace-row]').count();
  assert.equal(second, 58 - 50, 'the rest on page 2');
  assert.equal(await page.isDisabled('[data-testid=traces-next]'), true);
  await page.click('[data-testid=traces-prev]');
  await until(async () => (await page.locator('[data-testid=trace-row]').count()) === 50, 'back on page 1');
});

test('the trace page shows the span tree, the timeline, a span\'s inputs, outputs, attributes and events, and the assessments', async () => {
  await page.goto(`${server.url}/experiments/${expId}/traces`);
  await page.fill('[data-testid=traces-filter]', `trace.request_id = '${ids.ok}'`);
  await page.press('[data-testid=traces-filter]', 'Enter');
  await until(async () => (await page.locator('[data-testid=trace-row]').count()) === 1, 'the one trace');
  await page.click('[data-testid=trace-link]');
  await page.waitForURL(`**/traces/${ids.ok}`);
  await page.waitForSelector('[data-testid=span-row]');
  assert.equal(await page.textContent('[data-testid=trace-title]'), 'answer');
  assert.match(await page.textContent('[data-testid=fact-tokens]'), /^50 \(42 in · 8 out\)$/);
  // the tree: answer > retrieve, chat, with durations
  const names = await page.locator('[data-testid=span-row]').evaluateAll((rows) => rows.map((r) => r.dataset.spanName + ':' + r.dataset.depth));
  assert.deepEqual(names, ['answer:0', 'retrieve:1', 'chat:1']);
  const durs = await page.locator('[data-testid=span-duration]').allTextContents();
  assert.ok(durs.every((d) => /ms|s$/.test(d)), durs.join());
  // the timeline: one bar per visible span, the children inside their parent on the time axis
  const bars = await page.locator('[data-testid=timeline-bar] rect').evaluateAll((rs) => rs.map((r) => ({ x: Number(r.getAttribute('x')), w: Number(r.getAttribute('width')) })));
  assert.equal(bars.length, 3);
  assert.ok(bars[1].x >= bars[0].x && bars[2].x + bars[2].w <= bars[0].x + bars[0].w + 1, JSON.stringify(bars));
  assert.ok(bars[2].x >= bars[1].x + bars[1].w - 1, 'chat starts after retrieve ends');
  assert.ok(bars[2].w > bars[1].w, 'chat (40 ms) is longer than retrieve (20 ms)');
  // the root is selected: its inputs and outputs, pretty-printed
  assert.equal(await page.textContent('[data-testid=span-name]'), 'answer');
  assert.deepEqual(JSON.parse(await page.textContent('[data-testid=span-inputs]')), { question: 'What is the capital of France?' });
  assert.deepEqual(JSON.parse(await page.textContent('[data-testid=span-outputs]')), { answer: 'Paris' });
  assert.match(await page.textContent('[data-testid=span-inputs]'), /\n {2}"question"/);
  // select the chat span: attributes (its model, type), tokens and its event
  await page.click('[data-testid=span-row][data-span-name=chat]');
  assert.equal(await page.textContent('[data-testid=span-name]'), 'chat');
  assert.match(await page.textContent('[data-testid=span-attributes]'), /model\s*tiny-llm/);
  assert.match(await page.textContent('[data-testid=span-attributes]'), /CHAT_MODEL/);
  assert.match(await page.textContent('[data-testid=span-tokens]'), /42 in · 8 out · 50 total/);
  assert.equal(await page.locator('[data-testid=span-event]').count(), 1);
  assert.match(await page.textContent('[data-testid=span-event]'), /cache_miss[\s\S]*"key": "What is the capital of France\?"/);
  assert.equal(await page.getAttribute('[data-testid=timeline-bar][data-span-id] >> nth=2', 'class'), 'tr-bar on');
  // clicking a bar selects its span too
  await page.click('[data-testid=timeline-bar] >> nth=1');
  assert.equal(await page.textContent('[data-testid=span-name]'), 'retrieve');
  assert.match(await page.textContent('[data-testid=span-outputs]'), /"score": 0.93/);
  // assessments: the feedback with its rationale and source, the expectation
  const fb = page.locator('[data-testid=assessment][data-name=correct]');
  assert.equal(await fb.locator('[data-testid=assessment-value]').textContent(), 'true');
  assert.equal(await fb.locator('[data-testid=assessment-rationale]').textContent(), 'Paris is right');
  assert.match(await fb.textContent(), /HUMAN · reviewer@example.com/);
  assert.equal(await page.locator('[data-testid=assessment][data-name=expected_answer] [data-testid=assessment-value]').textContent(), 'Paris');
  await shot('trace');
  await checkLayout('the trace page');
  // collapse the root: only it remains, in the tree and on the timeline
  await page.click('[data-testid=span-row][data-span-name=answer] [data-testid=span-toggle]');
  assert.equal(await page.locator('[data-testid=span-row]').count(), 1);
  assert.equal(await page.locator('[data-testid=timeline-bar]').count(), 1);
  await page.click('[data-testid=span-row][data-span-name=answer] [data-testid=span-toggle]');
  assert.equal(await page.locator('[data-testid=span-row]').count(), 3);
  // a new assessment appears live
  const r = await api('POST', `/api/3.0/mlflow/traces/${ids.ok}/assessments`, {
    assessment: { trace_id: ids.ok, assessment_name: 'helpful', source: { source_type: 'LLM_JUDGE', source_id: 'judge' }, feedback: { value: 4 } },
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await page.waitForSelector('[data-testid=assessment][data-name=helpful]', { timeout: 10000 });
  assert.equal(await page.textContent('[data-testid=span-name]'), 'retrieve', 'the selection survives a live update');
});

test('the OTLP trace and the failed trace on their pages', async () => {
  await page.goto(`${server.url}/traces/${ids.otel}`);
  await page.waitForSelector('[data-testid=span-row]');
  const names = await page.locator('[data-testid=span-row]').evaluateAll((rows) => rows.map((r) => r.dataset.spanName + ':' + r.dataset.depth));
  assert.deepEqual(names, ['otel-agent:0', 'otel-llm:1', 'otel-tool:1']);
  assert.match(await page.textContent('[data-testid=fact-tokens]'), /^120 /);
  assert.deepEqual(JSON.parse(await page.textContent('[data-testid=span-inputs]')), { query: 'weather in Lyon' });
  assert.match(await page.textContent('[data-testid=span-attributes]'), /AGENT/);
  await page.click('[data-testid=span-row][data-span-name=otel-llm]');
  assert.match(await page.textContent('[data-testid=span-event]'), /retry[\s\S]*"attempt": 2/);
  assert.match(await page.textContent('[data-testid=span-tokens]'), /100 in · 20 out · 120 total/);
  assert.equal(await page.locator('[data-testid=assessments-empty]').count(), 1);
  await page.click('[data-testid=back-to-traces]');
  await page.waitForURL(`**/experiments/${expId}/traces`);

  await page.goto(`${server.url}/traces/${ids.error}`);
  await page.waitForSelector('[data-testid=span-row]');
  assert.equal(await page.textContent('[data-testid=fact-status] [data-testid=trace-status]'), 'ERROR');
  assert.equal(await page.textContent('[data-testid=span-status]'), 'ERROR');
  assert.match(await page.textContent('[data-testid=span-detail]'), /the tool failed/);
  await checkLayout('the failed trace');

  await page.goto(`${server.url}/traces/tr-00000000000000000000000000000000`);
  await page.waitForSelector('[data-testid=not-found]');
  assert.match(await page.textContent('[data-testid=trace-not-found]'), /not found/);
});
