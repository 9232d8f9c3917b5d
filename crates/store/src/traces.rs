//! MLflow 3 traces: what the store keeps of a trace (MLflow's TraceInfoV3,
//! its tags and request metadata, its spans) and the operations on them.
//!
//! A span's `content` is the OTLP span as JSON, owned by the `server` crate
//! (which decodes OTLP and writes MLflow's wire shapes); the store only reads
//! the columns beside it. Traces arrive in either order: spans first (OTLP,
//! which creates the trace from its root span) or the trace info first
//! (`start_trace`); each merges into what the other wrote.

use crate::{Page, Result, Tag};

/// Tag naming the trace (MLflow's `mlflow.traceName`).
pub const TRACE_NAME_TAG: &str = "mlflow.traceName";
/// Tag saying where spans live; `TRACKING_STORE` once any span is stored here.
pub const SPANS_LOCATION_TAG: &str = "mlflow.trace.spansLocation";
/// Tag with the trace's artifact folder (attachments, `traces.json`).
pub const ARTIFACT_LOCATION_TAG: &str = "mlflow.artifactLocation";
/// Request metadata naming the run a trace was logged under.
pub const SOURCE_RUN_METADATA: &str = "mlflow.sourceRun";
/// Request metadata set once the client's own TraceInfo has been stored:
/// spans arriving later no longer rewrite the trace's times and status.
pub const INFO_FINALIZED_METADATA: &str = "mlflow.trace.infoFinalized";
/// Request metadata with the trace's token usage (MLflow's `TraceMetadataKey.TOKEN_USAGE`):
/// `{"input_tokens": …, "output_tokens": …, "total_tokens": …}`. The client writes it for its own
/// traces; for spans that arrive alone (OTLP) the store sums it from the spans' usage.
pub const TOKEN_USAGE_METADATA: &str = "mlflow.trace.tokenUsage";

/// Token usage of one span (MLflow's `mlflow.chat.tokenUsage` span attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
}

/// One trace's info, as MLflow's TraceInfoV3 (in an experiment).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceInfo {
    pub trace_id: String,
    pub experiment_id: i64,
    pub client_request_id: Option<String>,
    pub request_time_ms: i64,
    pub execution_time_ms: Option<i64>,
    /// `OK`, `ERROR`, `IN_PROGRESS` or `STATE_UNSPECIFIED`.
    pub state: String,
    pub request_preview: Option<String>,
    pub response_preview: Option<String>,
    /// Request metadata, by key.
    pub metadata: Vec<Tag>,
    /// Tags, by key.
    pub tags: Vec<Tag>,
    /// The trace's assessments, oldest first (filled when read).
    pub assessments: Vec<TraceAssessment>,
}

/// One assessment (feedback or expectation) of a trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceAssessment {
    pub trace_id: String,
    pub assessment_id: String,
    pub name: String,
    pub create_time_ms: i64,
    /// MLflow's Assessment as JSON (the server's format).
    pub content: String,
}

/// One span of a trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceSpan {
    /// The MLflow trace id (`tr-` + the OTel trace id in hex).
    pub trace_id: String,
    /// Hex.
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    /// `mlflow.spanType`, if any.
    pub span_type: Option<String>,
    /// `OK`, `ERROR` or `UNSET`.
    pub status: String,
    pub start_time_ns: i64,
    pub end_time_ns: Option<i64>,
    /// The span as OTLP JSON (the server's format).
    pub content: String,
    /// For a root span: the trace's request and response previews, used when
    /// the trace is created from its spans.
    pub request_preview: Option<String>,
    pub response_preview: Option<String>,
    /// The span's own token usage, if it reports one.
    pub token_usage: Option<TokenUsage>,
}

/// A batch of spans for one experiment (one OTLP request).
#[derive(Debug, Clone, Default)]
pub struct LogSpans {
    pub experiment_id: i64,
    pub spans: Vec<TraceSpan>,
    /// Tags for every trace of the batch (OTLP resource attributes); a tag
    /// the trace has already keeps its value.
    pub resource_tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default)]
pub struct SearchTraces {
    pub experiment_ids: Vec<i64>,
    /// MLflow's trace filter grammar.
    pub filter: String,
    pub max_results: usize,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

/// Which traces of an experiment to delete: by ids, or the oldest ones up
/// to a time (at most `max_traces` of them).
#[derive(Debug, Clone, Default)]
pub struct DeleteTraces {
    pub experiment_id: i64,
    pub max_timestamp_millis: Option<i64>,
    pub max_traces: Option<i64>,
    pub trace_ids: Vec<String>,
}

/// Trace operations (a supertrait of [`crate::MetadataStore`]).
pub trait TraceStore {
    /// Store a trace's info (the client's `StartTraceV3`, sent when the trace
    /// ends), merging into a trace its spans created. Returns it as stored.
    fn start_trace(&self, info: &TraceInfo) -> Result<TraceInfo>;
    /// Store spans (replacing spans with the same ids), creating each trace
    /// that does not exist yet from its spans. Returns how many were stored.
    fn log_spans(&self, batch: &LogSpans) -> Result<usize>;
    /// `NotFound` ("Trace with ID '…' not found.") for an unknown id.
    fn get_trace_info(&self, trace_id: &str) -> Result<TraceInfo>;
    /// The infos of those of these traces that exist, in the order asked.
    fn get_trace_infos(&self, trace_ids: &[String]) -> Result<Vec<TraceInfo>>;
    /// The spans of these traces, by trace then start time.
    fn get_trace_spans(&self, trace_ids: &[String]) -> Result<Vec<TraceSpan>>;
    fn search_traces(&self, q: &SearchTraces) -> Result<Page<TraceInfo>>;
    /// Returns how many traces were deleted.
    fn delete_traces(&self, d: &DeleteTraces) -> Result<usize>;
    fn set_trace_tag(&self, trace_id: &str, key: &str, value: &str) -> Result<()>;
    fn delete_trace_tag(&self, trace_id: &str, key: &str) -> Result<()>;
    /// Link existing traces to an existing run (search by `run_id` finds them).
    fn link_traces_to_run(&self, trace_ids: &[String], run_id: &str) -> Result<()>;
    /// Create or replace assessments of one existing trace, in one transaction
    /// (an override writes the new assessment and the one it invalidates).
    fn save_trace_assessments(&self, trace_id: &str, items: &[TraceAssessment]) -> Result<()>;
    /// `NotFound` for an unknown trace or assessment.
    fn get_trace_assessment(&self, trace_id: &str, assessment_id: &str) -> Result<TraceAssessment>;
    /// `NotFound` for an unknown trace or assessment.
    fn delete_trace_assessment(&self, trace_id: &str, assessment_id: &str) -> Result<()>;
}
