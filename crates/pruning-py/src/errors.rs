//! The crate's typed errors as Python exceptions, with the same message.

use dynaprune::PruneError;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::PyErr;

/// `PruneError` -> `ValueError` for everything caused by the caller's input (knobs, indices,
/// lengths, non-finite values, schedules, epochs, saved state), `RuntimeError` otherwise (a
/// policy's selection that breaks its contract, `PruneError::BadSelection`: a defect, not input).
pub fn to_py(e: PruneError) -> PyErr {
    let msg = e.to_string();
    match e {
        PruneError::InvalidKnob { .. }
        | PruneError::MissingKnob { .. }
        | PruneError::InvalidMethod { .. }
        | PruneError::EmptyDataset
        | PruneError::IndexOutOfRange { .. }
        | PruneError::LengthMismatch { .. }
        | PruneError::NonFinite { .. }
        | PruneError::BadConfidence { .. }
        | PruneError::ScoreCountMismatch { .. }
        | PruneError::InvalidSchedule(_)
        | PruneError::EpochOutOfRange { .. }
        | PruneError::InvalidShard { .. }
        | PruneError::BadState(_)
        | PruneError::EpochOrder { .. } => PyValueError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// Shorthand: map a crate result into a Python result.
pub trait IntoPy<T> {
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPy<T> for dynaprune::Result<T> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}

/// A `ValueError` naming an argument.
pub fn value_error(arg: &str, what: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("`{arg}`: {what}"))
}
