//! The `relay_store._native` extension module: a thin layer that converts
//! between Python objects and the core types and maps errors.

use pyo3::prelude::*;

mod backends;
mod call;
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

/// The runtime of this process, started on first use. A child made by
/// `fork` inherits the parent's runtime but none of its threads, so nothing
/// spawned there would ever run: each process starts its own.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: crate::process::PerProcess<tokio::runtime::Runtime> = crate::process::PerProcess::new();
    RUNTIME.get(build_runtime)
}

/// One tokio worker is enough: the work is I/O-bound, and with a single
/// worker our task and redis-rs's connection driver run on the same thread,
/// so a call costs one cross-thread wake each way instead of several.
fn build_runtime() -> tokio::runtime::Runtime {
    let threads = std::env::var("RELAY_STORE_TOKIO_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("relay-store-io")
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}
