//! What can go wrong with a space, and the HTTP answer for each, in the
//! shape of every Atelier API error: `{"error_code": "...", "message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A failure to find, start, stop or reach a space.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpaceError {
    /// The name is not `[a-z0-9][a-z0-9-]{0,39}`.
    #[error(
        "'{0}' is not a valid space name: use 1 to 40 characters from a-z, 0-9 and '-', starting with a letter or a digit"
    )]
    InvalidName(String),
    /// Not the caller's space (or no such space): the same answer either way.
    #[error("no space named '{0}'")]
    NotFound(String),
    /// The configured Python interpreter does not exist.
    #[error(
        "the Python interpreter '{python}' was not found: run `atelier notebooks setup` (it makes one in the data folder), or start the server with --notebook-python naming a Python that has jupyterlab and ipykernel"
    )]
    PythonMissing { python: String },
    /// The interpreter runs but has no `jupyterlab` module.
    #[error(
        "JupyterLab is not installed for the Python interpreter '{python}': run `atelier notebooks setup` (it makes an environment in the data folder), or install it with `{python} -m pip install jupyterlab ipykernel`"
    )]
    JupyterLabMissing { python: String },
    /// JupyterLab did not answer its status API within the start timeout.
    #[error(
        "JupyterLab for space '{space}' did not answer within {seconds} s; the end of its log:\n{log_tail}"
    )]
    StartTimeout {
        space: String,
        seconds: u64,
        log_tail: String,
    },
    /// JupyterLab exited before it was ready.
    #[error(
        "JupyterLab for space '{space}' exited while starting ({status}); the end of its log:\n{log_tail}"
    )]
    StartFailed {
        space: String,
        status: String,
        log_tail: String,
    },
    /// The running JupyterLab could not be reached (the proxy's 502).
    #[error("JupyterLab for space '{space}' is unreachable: {message}")]
    Unreachable { space: String, message: String },
    /// [`crate::Spaces::shutdown`] has begun: nothing starts any more.
    #[error("the server is shutting down; spaces no longer start")]
    ShuttingDown,
    /// A file or process operation failed.
    #[error("{0}")]
    Io(String),
}

impl SpaceError {
    pub(crate) fn io(context: impl std::fmt::Display, e: std::io::Error) -> SpaceError {
        SpaceError::Io(format!("{context}: {e}"))
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            SpaceError::InvalidName(_) => StatusCode::BAD_REQUEST,
            SpaceError::NotFound(_) => StatusCode::NOT_FOUND,
            SpaceError::PythonMissing { .. } | SpaceError::JupyterLabMissing { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            SpaceError::StartTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            SpaceError::StartFailed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            SpaceError::Unreachable { .. } => StatusCode::BAD_GATEWAY,
            SpaceError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            SpaceError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `error_code` of this error (MLflow's vocabulary where it has one).
    pub fn error_code(&self) -> &'static str {
        match self {
            SpaceError::InvalidName(_) => "INVALID_PARAMETER_VALUE",
            SpaceError::NotFound(_) => "RESOURCE_DOES_NOT_EXIST",
            SpaceError::PythonMissing { .. } | SpaceError::JupyterLabMissing { .. } => {
                "TEMPORARILY_UNAVAILABLE"
            }
            SpaceError::StartTimeout { .. } => "DEADLINE_EXCEEDED",
            SpaceError::StartFailed { .. } => "INTERNAL_ERROR",
            SpaceError::Unreachable { .. } => "TEMPORARILY_UNAVAILABLE",
            SpaceError::ShuttingDown => "TEMPORARILY_UNAVAILABLE",
            SpaceError::Io(_) => "INTERNAL_ERROR",
        }
    }
}

impl IntoResponse for SpaceError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "space request failed");
        }
        let body =
            serde_json::json!({"error_code": self.error_code(), "message": self.to_string()});
        (status, axum::Json(body)).into_response()
    }
}
