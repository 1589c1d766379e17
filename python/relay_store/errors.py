"""Exceptions raised by every relay_store backend.

The classes live in Python (not in the native module) so that the pure-Python
backend and the Rust backends raise the very same types: ``except
relay_store.StorageError`` works whichever backend is in use.
"""

from __future__ import annotations

__all__ = [
    "RelayStoreError",
    "InvalidConfigError",
    "StorageError",
    "SerializationError",
]


class RelayStoreError(Exception):
    """Base class of every error relay_store raises on purpose."""


class InvalidConfigError(RelayStoreError, ValueError):
    """A backend spec or connection option is unusable."""


class StorageError(RelayStoreError):
    """The storage could not be reached, or a command against it failed."""


class SerializationError(RelayStoreError, ValueError):
    """A value cannot be written as JSON, or stored data cannot be decoded."""
