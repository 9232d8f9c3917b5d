//! The one table that turns failures into HTTP answers in MLflow's shape:
//! `{"error_code": "...", "message": "..."}` with MLflow's status mapping.
//! Matches are exhaustive with no `_` arm, so a new error variant cannot
//! ship without a status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameterValue,
    /// MLflow's generic `BAD_REQUEST` (400), which a few of its UI endpoints use.
    BadRequest,
    MalformedRequest,
    ResourceDoesNotExist,
    ResourceAlreadyExists,
    EndpointNotFound,
    Unauthenticated,
    PermissionDenied,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidState,
    InternalError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::MalformedRequest => "MALFORMED_REQUEST",
            ErrorCode::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            ErrorCode::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            ErrorCode::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::PayloadTooLarge => "INVALID_PARAMETER_VALUE",
            ErrorCode::UnsupportedMediaType => "INVALID_PARAMETER_VALUE",
            ErrorCode::InvalidState => "INVALID_STATE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidParameterValue => StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest => StatusCode::BAD_REQUEST,
            ErrorCode::ResourceDoesNotExist => StatusCode::NOT_FOUND,
            // MLflow answers 400, not 409, and its client relies on it.
            ErrorCode::ResourceAlreadyExists => StatusCode::BAD_REQUEST,
            ErrorCode::EndpointNotFound => StatusCode::NOT_FOUND,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidState => StatusCode::BAD_REQUEST,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceDoesNotExist, message)
    }
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == ErrorCode::InternalError {
            tracing::error!(message = %self.message, "internal error");
        }
        let body = serde_json::json!({"error_code": self.code.as_str(), "message": self.message});
        (self.code.status(), axum::Json(body)).into_response()
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        use store::StoreError as S;
        let code = match &e {
            S::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            S::AlreadyExists(_) => ErrorCode::ResourceAlreadyExists,
            S::InvalidParameter(_) => ErrorCode::InvalidParameterValue,
            S::InvalidState(_) => ErrorCode::InvalidState,
            S::Database(_) => ErrorCode::InternalError,
            S::Internal(_) => ErrorCode::InternalError,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<artifacts::ArtifactError> for ApiError {
    fn from(e: artifacts::ArtifactError) -> Self {
        use artifacts::ArtifactError as A;
        let code = match &e {
            A::InvalidPath(_) => ErrorCode::InvalidParameterValue,
            A::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            A::Storage(_) => ErrorCode::InternalError,
        };
        ApiError::new(code, e.to_string())
    }
}
