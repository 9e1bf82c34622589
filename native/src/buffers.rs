//! Bytes across the boundary, in bulk.
//!
//! Inputs are any object with the buffer protocol holding bytes: `bytes`, `bytearray`,
//! `memoryview`, a C- or Fortran-ordered NumPy `uint8` array of any shape. A `bytes` object
//! is read in place (it is immutable, so it may be read with the GIL released); any other
//! buffer is copied once (a `bytearray` could change under us otherwise). Outputs are new
//! `bytes` objects written in place, with the GIL released while they are filled.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The bytes of one input argument: borrowed from a `bytes` object or copied from a buffer.
pub enum Input<'py> {
    Borrowed(Bound<'py, PyBytes>),
    Owned(Vec<u8>),
}

impl Input<'_> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Borrowed(b) => b.as_bytes(),
            Self::Owned(v) => v.as_slice(),
        }
    }
}

/// Read argument `what` as bytes (see the module note); `TypeError` for anything else.
pub fn read<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Input<'py>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Input::Borrowed(b.clone()));
    }
    let buffer = PyBuffer::<u8>::get(obj).map_err(|_| {
        let type_name = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".to_owned());
        PyTypeError::new_err(format!(
            "{what}: expected bytes, bytearray, memoryview or a NumPy uint8 array, got {type_name}"
        ))
    })?;
    Ok(Input::Owned(buffer.to_vec(obj.py())?))
}

/// A new `bytes` of `len` bytes filled by `fill` with the GIL released.
pub fn new_bytes<'py, F>(py: Python<'py>, len: usize, fill: F) -> PyResult<Bound<'py, PyBytes>>
where
    F: FnOnce(&mut [u8]) + Send,
{
    PyBytes::new_with(py, len, |out| {
        py.detach(|| fill(out));
        Ok(())
    })
}
