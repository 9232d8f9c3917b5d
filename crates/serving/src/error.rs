//! One table from failures to HTTP status. Client mistakes are 4xx with a
//! message saying what to fix; only our own failures are 5xx.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// The request (payload, parameters, configuration) is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The payload is larger than the endpoint accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A Content-Type the endpoint does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// An Accept the endpoint cannot answer in.
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// Too many requests in flight on this endpoint: retry shortly.
    #[error("{0}")]
    Overloaded(String),
    /// Our failure (storage, a crashed task).
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = ServingError> = std::result::Result<T, E>;

impl ServingError {
    pub fn status(&self) -> StatusCode {
        match self {
            ServingError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServingError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServingError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ServingError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ServingError::NotFound(_) => StatusCode::NOT_FOUND,
            ServingError::AlreadyExists(_) => StatusCode::CONFLICT,
            ServingError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServingError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ServingError::BadRequest(_) => "INVALID_PARAMETER_VALUE",
            ServingError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            ServingError::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            ServingError::NotAcceptable(_) => "NOT_ACCEPTABLE",
            ServingError::NotFound(_) => "RESOURCE_DOES_NOT_EXIST",
            ServingError::AlreadyExists(_) => "RESOURCE_ALREADY_EXISTS",
            ServingError::Overloaded(_) => "TEMPORARILY_UNAVAILABLE",
            ServingError::Internal(_) => "INTERNAL_ERROR",
        }
    }
}

impl From<store::StoreError> for ServingError {
    fn from(e: store::StoreError) -> Self {
        use store::StoreError as S;
        match e {
            S::NotFound(m) => ServingError::NotFound(m),
            S::AlreadyExists(m) => ServingError::AlreadyExists(m),
            S::InvalidParameter(m) | S::InvalidState(m) => ServingError::BadRequest(m),
            S::Database(e) => ServingError::Internal(format!("database error: {e}")),
            S::Internal(m) => ServingError::Internal(m),
        }
    }
}

impl From<artifacts::ArtifactError> for ServingError {
    fn from(e: artifacts::ArtifactError) -> Self {
        use artifacts::ArtifactError as A;
        match e {
            A::InvalidPath(m) => ServingError::BadRequest(m),
            A::NotFound(m) => ServingError::NotFound(m),
            A::Storage(m) => ServingError::Internal(format!("artifact storage error: {m}")),
        }
    }
}

impl IntoResponse for ServingError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!("{self}");
        }
        let body = serde_json::json!({"error_code": self.code(), "message": self.to_string()});
        let mut r = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}
