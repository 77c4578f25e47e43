//! The crate's error type: every failure names the file (or setting) and what was expected.

use std::path::PathBuf;

/// Errors from loading, validating or batching data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file exists but its content is not what its format requires.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong, including what was expected.
        message: String,
    },
    /// A dataset's directory or files are missing.
    #[error("{what} not found at {}: {hint}", path.display())]
    Missing {
        /// What is missing (e.g. "Fashion-MNIST").
        what: String,
        /// Where it was looked for.
        path: PathBuf,
        /// How to get it there.
        hint: String,
    },
    /// A sample index is out of range.
    #[error("sample index {index} is out of range: the dataset has {len} samples")]
    IndexOutOfRange {
        /// The index.
        index: usize,
        /// Dataset size.
        len: usize,
    },
    /// An invalid setting (augmentation, batch, normalisation).
    #[error("invalid {name}: {message}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Shorthand for this crate's results.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

pub(crate) fn format_err(path: impl Into<PathBuf>, message: impl Into<String>) -> DataError {
    DataError::Format { path: path.into(), message: message.into() }
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DataError {
    let path = path.into();
    move |source| DataError::Io { path, source }
}
