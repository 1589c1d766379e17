//! The `relay_store._native` extension module: a thin layer that converts
//! between Python objects and the core types and maps errors.

use std::sync::atomic::{AtomicPtr, Ordering};

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

/// The runtime of this process, started on first use.
///
/// A child made by `fork` inherits the parent's runtime but none of its
/// threads: nothing spawned there would ever run, and every call would hang.
/// So the runtime is tied to the process that started it, and a child starts
/// its own. (The inherited one is left alone: it cannot be shut down without
/// its threads.)
pub fn runtime() -> &'static tokio::runtime::Runtime {
    struct Owned {
        pid: u32,
        runtime: tokio::runtime::Runtime,
    }
    static CURRENT: AtomicPtr<Owned> = AtomicPtr::new(std::ptr::null_mut());

    let pid = std::process::id();
    let current = CURRENT.load(Ordering::Acquire);
    // SAFETY: a pointer stored in CURRENT comes from `Box::leak` and is never freed.
    if let Some(owned) = unsafe { current.as_ref() } {
        if owned.pid == pid {
            return &owned.runtime;
        }
    }
    let fresh: &'static mut Owned = Box::leak(Box::new(Owned { pid, runtime: build_runtime() }));
    match CURRENT.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => &fresh.runtime,
        Err(_) => {
            // Another thread started one first: use that. Ours has run
            // nothing yet, so it can be shut down right away.
            // SAFETY: `fresh` was leaked above and published nowhere.
            let unused = unsafe { Box::from_raw(fresh as *mut Owned) };
            unused.runtime.shutdown_background();
            runtime()
        }
    }
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
