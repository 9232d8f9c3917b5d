use std::path::{Path, PathBuf};

/// Why a file could not be read; every variant names the file and says what
/// to fix.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// (The IO error is part of the message, not a `source`, so that error
    /// chains do not print it twice.)
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: the file is empty; give a CSV with a header row and at least one data row")]
    Empty { path: PathBuf },
    #[error("{path}: the file has a header but no data rows")]
    NoRows { path: PathBuf },
    #[error(
        "{path}: this looks like a binary file, not CSV or Parquet (found a NUL byte near byte {offset}); export the data as CSV or Parquet"
    )]
    Binary { path: PathBuf, offset: usize },
    #[error("{path}, line {line}: {message}")]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error(
        "{path}: column {index} ('{name}') appears more than once in the header; rename one of them"
    )]
    DuplicateColumn {
        path: PathBuf,
        index: usize,
        name: String,
    },
    #[error("{path}: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Unsupported { path: PathBuf, message: String },
}

impl DataError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            error: source,
        }
    }
}
