//! relay-store: the learned state of adaptive agent runtimes (observed runs,
//! execution plans, prediction tries, accumulators, prompt observations and
//! stability results) in Redis or in memory, in NeMo Relay's wire format.
//!
//! The core (models, wire format, backends, traits) has no Python dependency;
//! the `python` feature adds the PyO3 bindings that maturin builds.

pub mod backend;
pub mod error;
pub mod hashing;
pub mod io_thread;
pub mod json;
pub mod memory;
pub mod model;
pub mod process;
pub mod stats;
pub mod timestamp;
pub mod trie_json;
pub mod redis_backend;
pub mod run_cache;
pub mod wire;

#[cfg(feature = "python")]
mod python;

pub use backend::{Backend, StorageBackend, StorageBackendDyn};
pub use error::{Error, Result};
pub use memory::InMemoryBackend;
pub use redis_backend::{RedisBackend, RedisOptions};
pub use model::*;
pub use stats::Digest;

/// The extension allocates many small objects when it decodes records;
/// mimalloc does that markedly faster than the system allocator. Only the
/// Python extension sets it: a Rust host linking the crate keeps its own.
#[cfg(feature = "python")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
