//! The `relay_store._native` extension module: a thin layer that converts
//! between Python objects and the core types and maps errors.

use std::sync::OnceLock;
use std::time::Duration;

use pyo3::prelude::*;

use crate::io_thread::{spin_setting, IoThread, DEFAULT_SPIN};

mod backends;
mod call;
mod convert;
mod errors;
mod models;
mod views;

/// How long the I/O thread stays awake after activity, in microseconds.
const SPIN_VAR: &str = "RELAY_STORE_IO_SPIN_US";
static SPIN: OnceLock<Duration> = OnceLock::new();

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Fork counting starts now, before any thread of ours exists.
    crate::process::ProcessId::current();
    // A bad setting fails the import, naming the variable, rather than the
    // first call or nothing at all.
    let value = std::env::var_os(SPIN_VAR).map(|v| v.to_string_lossy().into_owned());
    let spin = spin_setting(SPIN_VAR, value.as_deref())?;
    let spin = *SPIN.get_or_init(|| spin);
    m.add("io_spin_us", spin.as_micros())?;
    models::register(m)?;
    views::register(m)?;
    backends::register(m)?;
    Ok(())
}

/// The thread that runs this process's I/O, started on first use. A child
/// made by `fork` inherits the parent's but not its thread, so nothing
/// spawned there would ever run: each process starts its own.
pub fn io_thread() -> &'static IoThread {
    static IO: crate::process::PerProcess<IoThread> = crate::process::PerProcess::new();
    IO.get(|| {
        let spin = SPIN.get().copied().unwrap_or(DEFAULT_SPIN);
        IoThread::start("relay-store-io", "relay-store-cpu", spin).expect("the relay-store I/O thread starts")
    })
}
