//! One error type for the whole crate, with named cases; each becomes a Python exception
//! (never a panic) at the boundary.

use std::fmt;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError, PyZeroDivisionError};
use pyo3::PyErr;

/// What can go wrong in a call. Every message names the argument and, for vectors, the
/// index of the first offending element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A buffer's length is not what the call needs (not a multiple of the word size, more
    /// scalars than bases, a vector longer than the domain, ...).
    Length(String),
    /// A scalar word encodes a value `>= R`, or a coordinate word a value `>= P`.
    NonCanonical(String),
    /// A G1 or G2 point is not on its curve.
    OffCurve(String),
    /// A G2 point is on the twist but not in the order-`R` subgroup.
    NotInSubgroup(String),
    /// A domain size outside `2^0 .. 2^28`, a zero coset shift, or another unusable argument.
    Domain(String),
    /// Batch inversion met a zero.
    ZeroInverse(String),
    /// The thread pool could not be started.
    Runtime(String),
    /// A file could not be written (the path and the operating system's reason).
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length(m)
            | Self::NonCanonical(m)
            | Self::OffCurve(m)
            | Self::NotInSubgroup(m)
            | Self::Domain(m)
            | Self::ZeroInverse(m)
            | Self::Runtime(m)
            | Self::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for PyErr {
    /// `ZeroInverse` -> `ZeroDivisionError` (as `verifier.fr.batch_inverse` raises),
    /// `Runtime` -> `RuntimeError`, `Io` -> `OSError`, every input error -> `ValueError`.
    fn from(err: Error) -> Self {
        match err {
            Error::ZeroInverse(m) => PyZeroDivisionError::new_err(m),
            Error::Runtime(m) => PyRuntimeError::new_err(m),
            Error::Io(m) => PyOSError::new_err(m),
            other => PyValueError::new_err(other.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
