"""Build a backend from a spec dict shaped like NeMo Relay's ``BackendSpec``.

Keeping the spec format identical to NeMo Relay's lets one configuration file
drive both a Python agent and a Rust process that share the same store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._protocol import StorageBackend
from .errors import InvalidConfigError

__all__ = ["open_backend"]

_DEFAULT_KEY_PREFIX = "nemo_relay:"
# Options of RedisBackend.connect that a spec may carry besides url/key_prefix
# (and run_cache_bytes, an int, and client_tracking, a bool, each checked on
# its own).
# Other keys are ignored, so that a spec written for NeMo Relay (which may
# know options this package does not) still opens.
_REDIS_TIMEOUTS = ("connect_timeout", "response_timeout")


async def open_backend(spec: Mapping[str, Any]) -> StorageBackend:
    """Open the backend a spec describes (SPEC §3).

    ``{"kind": "in_memory"}`` gives a fresh :class:`InMemoryBackend`;
    ``{"kind": "redis", "config": {"url": ..., "key_prefix": ...}}`` connects a
    :class:`RedisBackend`. A malformed spec raises :class:`InvalidConfigError`
    before any connection is attempted, so configuration mistakes are told
    apart from an unreachable server (:class:`StorageError`).
    """
    if not isinstance(spec, Mapping):
        raise InvalidConfigError(
            f"backend spec must be a mapping, not {type(spec).__name__}"
        )
    if "kind" not in spec:
        raise InvalidConfigError(
            "backend spec missing 'kind' (expected 'in_memory' or 'redis')"
        )
    kind = spec["kind"]

    if kind == "in_memory":
        # Imported here rather than at module level so that importing this
        # module never depends on the native extension being loadable first.
        from ._native import InMemoryBackend

        return InMemoryBackend()

    if kind == "redis":
        return await _open_redis(spec.get("config"))

    raise InvalidConfigError(f"unsupported backend '{kind}'")


async def _open_redis(config: object) -> StorageBackend:
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise InvalidConfigError(
            f"redis backend config must be a mapping, not {type(config).__name__}"
        )
    url = config.get("url")
    if url is None:
        raise InvalidConfigError("redis backend missing url")
    if not isinstance(url, str):
        raise InvalidConfigError(
            f"redis backend url must be a string, not {type(url).__name__}"
        )
    # None means the default, as it does for the timeouts.
    key_prefix = config.get("key_prefix")
    if key_prefix is None:
        key_prefix = _DEFAULT_KEY_PREFIX
    if not isinstance(key_prefix, str):
        raise InvalidConfigError(
            "redis backend key_prefix must be a string, "
            f"not {type(key_prefix).__name__}"
        )
    options: dict[str, Any] = {}
    cache_bytes = config.get("run_cache_bytes")
    if cache_bytes is not None:
        if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int):
            raise InvalidConfigError(
                "redis backend run_cache_bytes must be an int (bytes), "
                f"not {type(cache_bytes).__name__}"
            )
        options["run_cache_bytes"] = cache_bytes
    tracking = config.get("client_tracking")
    if tracking is not None:
        if not isinstance(tracking, bool):
            raise InvalidConfigError(
                "redis backend client_tracking must be a bool, "
                f"not {type(tracking).__name__}"
            )
        options["client_tracking"] = tracking
    for name in _REDIS_TIMEOUTS:
        value = config.get(name)
        if value is None:
            continue
        # bool is an int subclass but never a sensible number of seconds.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidConfigError(
                f"redis backend {name} must be a number of seconds, "
                f"not {type(value).__name__}"
            )
        try:
            options[name] = float(value)
        except OverflowError:
            raise InvalidConfigError(f"redis backend {name} is too large a number of seconds") from None

    from ._native import RedisBackend

    return await RedisBackend.connect(url, key_prefix=key_prefix, **options)
