//! The single conversion from the crate's [`Error`] to Python exceptions.
//!
//! The exception classes are defined in `relay_store.errors` (Python), so the
//! pure-Python backend and the native ones raise the very same types.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::error::Error;

static STORAGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SERIALIZATION: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_CONFIG: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn class<'py>(py: Python<'py>, cell: &'static PyOnceLock<Py<PyType>>, name: &str) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, "relay_store.errors", name)
}

pub fn to_pyerr(err: Error) -> PyErr {
    Python::attach(|py| {
        let (cell, name, msg) = match err {
            Error::Storage(m) => (&STORAGE, "StorageError", m),
            Error::Serialization(m) => (&SERIALIZATION, "SerializationError", m),
            Error::InvalidConfig(m) => (&INVALID_CONFIG, "InvalidConfigError", m),
        };
        match class(py, cell, name) {
            Ok(cls) => PyErr::from_type(cls.clone(), msg),
            Err(e) => PyRuntimeError::new_err(format!("relay_store.errors unavailable ({e}): {msg}")),
        }
    })
}

pub fn serialization(msg: impl Into<String>) -> PyErr {
    to_pyerr(Error::Serialization(msg.into()))
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        to_pyerr(err)
    }
}
