//! The `relay_store._native` extension module: a thin layer that converts
//! between Python objects and the core types and maps errors.

use pyo3::prelude::*;

mod backends;
mod convert;
mod errors;
mod models;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    models::register(m)?;
    backends::register(m)?;
    Ok(())
}
