//! The one error type of the crate.
//!
//! Three kinds are enough because callers react to exactly three situations:
//! the configuration is wrong (fix the call), the store is unreachable (retry
//! or fail over), or the data is not what the contract says (a bug or a
//! foreign writer). The Python layer maps each kind onto the exception class
//! of the same name in `relay_store.errors`.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Serialization(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn storage(msg: impl Into<String>) -> Self {
        Error::Storage(msg.into())
    }
    pub fn serialization(msg: impl Into<String>) -> Self {
        Error::Serialization(msg.into())
    }
    pub fn config(msg: impl Into<String>) -> Self {
        Error::InvalidConfig(msg.into())
    }
}
