"""Makes the native backends' methods coroutine functions.

Each storage method of a native backend is an ``async def`` that calls the
Rust method and awaits the ``NativeCall`` it returns. The wrapper is what
gives a call its coroutine semantics, so it is not optional:

- ``inspect.iscoroutinefunction`` is true for the method and
  ``inspect.iscoroutine`` for the call, which code that decides whether to
  await relies on (``unittest.mock.create_autospec``, web frameworks, retry
  decorators);
- the Rust method runs only when the coroutine is first awaited, so its
  arguments are read and a closed backend is reported then, as from the
  first line of a coroutine;
- a call never awaited warns, and stepping a call while it runs or sending
  a value into one not started is refused, by Python's own coroutine.

The ``NativeCall`` under the ``await`` carries the result back and lets a
cancellation abort the work. The wrapper costs about 0.1 µs a call.

The native module calls ``install`` on each backend class as it loads, so
the classes are complete whichever way the module is reached.
"""

from __future__ import annotations

from typing import Any

__all__ = ["install"]


def install(cls: Any) -> None:
    """Replaces the storage methods of the native class ``cls`` in place and
    makes it an async context manager that closes on exit."""
    store_run_ = cls.store_run
    list_runs_ = cls.list_runs
    store_plan_ = cls.store_plan
    load_plan_ = cls.load_plan
    store_trie_ = cls.store_trie
    load_trie_ = cls.load_trie
    store_accumulators_ = cls.store_accumulators
    load_accumulators_ = cls.load_accumulators
    store_observations_ = cls.store_observations
    load_observations_ = cls.load_observations
    store_stability_ = cls.store_stability
    load_stability_ = cls.load_stability
    close_ = cls.close

    async def store_run(self, record):
        return await store_run_(self, record)

    async def list_runs(self, agent_id):
        return await list_runs_(self, agent_id)

    async def store_plan(self, plan):
        return await store_plan_(self, plan)

    async def load_plan(self, agent_id):
        return await load_plan_(self, agent_id)

    async def store_trie(self, agent_id, envelope):
        return await store_trie_(self, agent_id, envelope)

    async def load_trie(self, agent_id):
        return await load_trie_(self, agent_id)

    async def store_accumulators(self, agent_id, state):
        return await store_accumulators_(self, agent_id, state)

    async def load_accumulators(self, agent_id):
        return await load_accumulators_(self, agent_id)

    async def store_observations(self, agent_id, observations):
        return await store_observations_(self, agent_id, observations)

    async def load_observations(self, agent_id):
        return await load_observations_(self, agent_id)

    async def store_stability(self, agent_id, result):
        return await store_stability_(self, agent_id, result)

    async def load_stability(self, agent_id):
        return await load_stability_(self, agent_id)

    async def close(self):
        return await close_(self)

    async def __aenter__(self):
        """Returns the backend itself."""
        return self

    async def __aexit__(self, exc_type, exc, tb, /):
        """Closes the backend; an exception raised in the block goes on."""
        return await close_(self)

    methods = [
        (store_run, store_run_),
        (list_runs, list_runs_),
        (store_plan, store_plan_),
        (load_plan, load_plan_),
        (store_trie, store_trie_),
        (load_trie, load_trie_),
        (store_accumulators, store_accumulators_),
        (load_accumulators, load_accumulators_),
        (store_observations, store_observations_),
        (load_observations, load_observations_),
        (store_stability, store_stability_),
        (load_stability, load_stability_),
        (close, close_),
        (__aenter__, None),
        (__aexit__, None),
    ]
    for method, native in methods:
        _describe(method, native, cls)
        setattr(cls, method.__name__, method)
    if "connect" in vars(cls):
        connect_ = cls.connect

        # The defaults shown are SPEC §4's, which the Rust side also applies
        # (it reads None as its own default, the same values).
        async def connect(
            url,
            key_prefix="nemo_relay:",
            *,
            connect_timeout=5.0,
            response_timeout=5.0,
            run_cache_bytes=32 * 1024 * 1024,
            client_tracking=True,
        ):
            return await connect_(
                url,
                key_prefix,
                connect_timeout=connect_timeout,
                response_timeout=response_timeout,
                run_cache_bytes=run_cache_bytes,
                client_tracking=client_tracking,
            )

        _describe(connect, connect_, cls)
        cls.connect = staticmethod(connect)


def _describe(method: Any, native: Any, cls: Any) -> None:
    """Names ``method`` as the class's own (warnings and reprs say
    ``InMemoryBackend.store_run``) and gives it the native method's doc."""
    method.__module__ = cls.__module__
    method.__qualname__ = f"{cls.__name__}.{method.__name__}"
    if method.__doc__ is None:
        method.__doc__ = native.__doc__
