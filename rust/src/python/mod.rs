//! The `relay_store._native` extension module: a thin layer that converts
//! between Python objects and the core types and maps errors.

use std::sync::OnceLock;
use std::time::Duration;

use pyo3::prelude::*;

use crate::error::Error;
use crate::io_thread::{IoThread, DEFAULT_SPIN};

mod backends;
mod call;
mod convert;
mod errors;
mod models;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // A bad setting fails the import, naming the variable, rather than the
    // first call or not at all.
    let spin = spin_from_env(std::env::var_os(SPIN_VAR))?;
    let _ = SPIN.set(spin);
    models::register(m)?;
    backends::register(m)?;
    Ok(())
}

/// How long the I/O thread stays awake after activity, in microseconds.
const SPIN_VAR: &str = "RELAY_STORE_IO_SPIN_US";
const MAX_SPIN_US: u64 = 100_000;
static SPIN: OnceLock<Duration> = OnceLock::new();

fn spin_from_env(value: Option<std::ffi::OsString>) -> Result<Duration, Error> {
    let Some(value) = value else { return Ok(DEFAULT_SPIN) };
    let text = value.to_string_lossy();
    match text.trim().parse::<u64>() {
        Ok(us) if us <= MAX_SPIN_US => Ok(Duration::from_micros(us)),
        _ => Err(Error::config(format!(
            "{SPIN_VAR} must be a whole number of microseconds from 0 to {MAX_SPIN_US}, not {text:?}"
        ))),
    }
}

/// The thread that runs this process's I/O, started on first use. A child
/// made by `fork` inherits the parent's but not its thread, so nothing
/// spawned there would ever run: each process starts its own.
pub fn io_thread() -> &'static IoThread {
    static IO: crate::process::PerProcess<IoThread> = crate::process::PerProcess::new();
    IO.get(|| {
        let spin = SPIN.get().copied().unwrap_or(DEFAULT_SPIN);
        IoThread::start("relay-store-io", spin).expect("the relay-store I/O thread starts")
    })
}
