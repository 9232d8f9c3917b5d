use std::path::PathBuf;

/// Why a notebook could not be run at all. (A cell that fails is not an
/// error: [`crate::execute`] returns `Ok` with [`crate::Outcome::Failed`].)
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("the input is not a Jupyter notebook: {0}")]
    NotANotebook(String),
    #[error(
        "notebook format {major}.{minor} is not supported: only nbformat 4 notebooks can be run \
         (convert it with `jupyter nbconvert --to notebook --nbformat 4 FILE`)"
    )]
    UnsupportedVersion { major: i64, minor: i64 },
    #[error(
        "no kernel named {name:?} is installed; available kernels: {}{hint}",
        if available.is_empty() { "none".to_string() } else { available.join(", ") },
        hint = if available.is_empty() {
            " (install one, e.g. `python -m pip install ipykernel` in the job's environment)"
        } else {
            ""
        }
    )]
    UnknownKernel {
        name: String,
        available: Vec<String>,
    },
    #[error(
        "parameters can only be injected into Python notebooks for now, but this notebook's \
         kernel {kernel:?} runs {language:?}; run it without parameters or use a Python kernel"
    )]
    UnsupportedLanguage { kernel: String, language: String },
    #[error("invalid parameter name {name:?}: parameter names must be Python identifiers")]
    InvalidParameterName { name: String },
    #[error("kernel {kernel:?} could not be started: {reason}")]
    KernelStart { kernel: String, reason: String },
    #[error("cannot run kernel {kernel:?}: working directory {dir} does not exist")]
    MissingCwd { kernel: String, dir: PathBuf },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
