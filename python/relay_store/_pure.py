"""A pure-Python in-memory backend: the reference implementation of SPEC §3.

It exists so that the Rust backends have something simple to be compared
against. Every rule of the contract is spelled out here in plain Python, in the
most obvious way, so that a parity test that fails points at the Rust side (or
at a rule this file gets wrong in plain sight), never at a clever trick.

The stored values are the immutable native model objects themselves: they
cannot change after construction, so keeping a reference is as safe as keeping
a copy, and reading a value back is O(1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self, cast

from ._native import (
    AccumulatorState,
    ExecutionPlan,
    PromptIR,
    RunRecord,
    StabilityAnalysisResult,
    TrieEnvelope,
)
from .errors import SerializationError, StorageError

__all__ = ["PyInMemoryBackend"]


def _require(value: object, expected: type, name: str) -> None:
    # The Rust backends refuse a value of the wrong type before touching any
    # state; doing the same here keeps a bad call from half-succeeding.
    if not isinstance(value, expected):
        raise TypeError(
            f"{name} must be {expected.__name__}, not {type(value).__name__}"
        )


def _require_agent_id(agent_id: object) -> None:
    _require(agent_id, str, "agent_id")
    text = cast(str, agent_id)
    # A lone surrogate cannot be part of a key: no UTF-8 text (a Redis key,
    # a JSON document) can carry it, so the native backends refuse it too.
    # str's own methods: a str subclass may override them.
    if not str.isascii(text):
        try:
            str.encode(text, "utf-8")
        except UnicodeEncodeError:
            raise ValueError("agent_id is not valid Unicode text (it holds a lone surrogate)") from None


def _ensure_writable(value: Any, what: str) -> None:
    # SPEC §3: never store what could not be read back. Serialising is the one
    # check that is exactly as strict as Redis would be (it refuses NaN and
    # infinities with SerializationError), so run it and throw the text away.
    # The message names what was refused, as the native backends do, and
    # the path inside it without the class name: `cannot store trie of
    # agent "a": root.predictions_by_call_index[1]...`.
    try:
        value.to_json()
    except SerializationError as error:
        detail = str(error).removeprefix(type(value).__name__ + ".")
        raise SerializationError(f"cannot store {what}: {detail}") from None


def _of_agent(kind: str, agent_id: str) -> str:
    # Quoted as JSON, as the native backends quote it.
    return f"{kind} of agent {json.dumps(agent_id, ensure_ascii=False)}"


class PyInMemoryBackend:
    """Process-local storage with exactly the semantics of the Redis backend.

    Nothing here awaits, so each method runs to completion in one step of the
    event loop: that is what makes every store atomic with respect to other
    tasks, and what makes a cancelled call either fully done or not started.
    """

    def __init__(self) -> None:
        # Runs are keyed by (agent_id, run id) like the Redis keys
        # ``runs:{agent_id}:{run_id}``: the same run id under two agents is
        # two different records.
        self._runs: dict[tuple[str, str], RunRecord] = {}
        # The per-agent index, oldest first, mirroring ``runs_index:{agent_id}``.
        self._run_index: dict[str, list[str]] = {}
        self._plans: dict[str, ExecutionPlan] = {}
        self._tries: dict[str, TrieEnvelope] = {}
        self._accumulators: dict[str, AccumulatorState] = {}
        # A tuple, so that the caller's sequence (or a later mutation of it)
        # never leaks into what was stored.
        self._observations: dict[str, tuple[PromptIR, ...]] = {}
        self._stability: dict[str, StabilityAnalysisResult] = {}
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<PyInMemoryBackend {state}>"

    def _check_open(self) -> None:
        # Using a closed backend is a programming error that should be loud,
        # the same way it is on Redis once the connection is gone.
        if self._closed:
            raise StorageError("backend is closed")

    # -- runs -------------------------------------------------------------

    async def store_run(self, record: RunRecord) -> None:
        """Store a run and index it, once per run id.

        Storing the same id again replaces the record but must not index it a
        second time, so that retries after a timeout are harmless.
        """
        self._check_open()
        _require(record, RunRecord, "record")
        _ensure_writable(record, f"run {record.id}")
        agent_id = record.agent_id
        run_id = str(record.id)
        key = (agent_id, run_id)
        # A stored record means its id is indexed already (both are always
        # written together), so checking the record keeps the store O(1)
        # instead of scanning the index -- the same rule as the Redis script.
        if key not in self._runs:
            self._run_index.setdefault(agent_id, []).append(run_id)
        self._runs[key] = record

    async def list_runs(self, agent_id: str) -> list[RunRecord]:
        """Return the agent's runs in index order.

        The index may hold ids whose record is gone or ids listed twice when
        another writer shares the store; readers must cope with both, so the
        reference copes with both too, even though this backend never creates
        either situation on its own.
        """
        self._check_open()
        _require_agent_id(agent_id)
        seen: set[str] = set()
        runs: list[RunRecord] = []
        for run_id in self._run_index.get(agent_id, ()):
            if run_id in seen:
                continue
            seen.add(run_id)
            record = self._runs.get((agent_id, run_id))
            if record is not None:
                runs.append(record)
        return runs

    # -- execution plans ----------------------------------------------------

    async def store_plan(self, plan: ExecutionPlan) -> None:
        """Replace the agent's plan; the plan names its own agent (SPEC §2)."""
        self._check_open()
        _require(plan, ExecutionPlan, "plan")
        _ensure_writable(plan, _of_agent("plan", plan.agent_id))
        self._plans[plan.agent_id] = plan

    async def load_plan(self, agent_id: str) -> ExecutionPlan | None:
        """The agent's plan, or ``None``."""
        self._check_open()
        _require_agent_id(agent_id)
        return self._plans.get(agent_id)

    # -- prediction tries ---------------------------------------------------

    async def store_trie(self, agent_id: str, envelope: TrieEnvelope) -> None:
        """Stores the agent's prediction trie, replacing the previous one."""
        self._check_open()
        _require_agent_id(agent_id)
        _require(envelope, TrieEnvelope, "envelope")
        _ensure_writable(envelope, _of_agent("trie", agent_id))
        self._tries[agent_id] = envelope

    async def load_trie(self, agent_id: str) -> TrieEnvelope | None:
        """The agent's prediction trie, or ``None``."""
        self._check_open()
        _require_agent_id(agent_id)
        return self._tries.get(agent_id)

    # -- accumulators -------------------------------------------------------

    async def store_accumulators(
        self, agent_id: str, state: AccumulatorState
    ) -> None:
        """Stores the agent's trie accumulators, replacing the previous ones."""
        self._check_open()
        _require_agent_id(agent_id)
        _require(state, AccumulatorState, "state")
        _ensure_writable(state, _of_agent("accumulators", agent_id))
        self._accumulators[agent_id] = state

    async def load_accumulators(self, agent_id: str) -> AccumulatorState | None:
        """The agent's trie accumulators, or ``None``."""
        self._check_open()
        _require_agent_id(agent_id)
        return self._accumulators.get(agent_id)

    # -- prompt observations ------------------------------------------------

    async def store_observations(
        self, agent_id: str, observations: Sequence[PromptIR]
    ) -> None:
        """Replace the agent's observations with this sequence, as one value.

        Every element is checked before anything is written so that a bad
        element in the middle cannot leave a truncated list behind.
        """
        self._check_open()
        _require_agent_id(agent_id)
        # A str is a Sequence too, but never a sequence of PromptIR.
        if not isinstance(observations, Sequence) or isinstance(
            observations, (str, bytes, bytearray)
        ):
            raise TypeError(
                "observations must be a sequence of PromptIR, "
                f"not {type(observations).__name__}"
            )
        snapshot = tuple(observations)
        # Every element's type first, then whether it can be written, as the
        # native backends check them.
        for position, observation in enumerate(snapshot):
            _require(observation, PromptIR, f"observations[{position}]")
        for observation in snapshot:
            _ensure_writable(observation, _of_agent("observations", agent_id))
        self._observations[agent_id] = snapshot

    async def load_observations(self, agent_id: str) -> list[PromptIR] | None:
        """Return a fresh list each time, so callers may mutate it freely."""
        self._check_open()
        _require_agent_id(agent_id)
        stored = self._observations.get(agent_id)
        return None if stored is None else list(stored)

    # -- stability ----------------------------------------------------------

    async def store_stability(
        self, agent_id: str, result: StabilityAnalysisResult
    ) -> None:
        """Stores the agent's stability result, replacing the previous one."""
        self._check_open()
        _require_agent_id(agent_id)
        _require(result, StabilityAnalysisResult, "result")
        _ensure_writable(result, _of_agent("stability result", agent_id))
        self._stability[agent_id] = result

    async def load_stability(
        self, agent_id: str
    ) -> StabilityAnalysisResult | None:
        """The agent's stability result, or ``None``."""
        self._check_open()
        _require_agent_id(agent_id)
        return self._stability.get(agent_id)

    # -- lifecycle ----------------------------------------------------------

    async def close(self) -> None:
        """Release the data; closing twice is harmless.

        Nothing can be read from a closed backend, so keeping the values would
        only hold memory for nobody.
        """
        self._closed = True
        self._runs.clear()
        self._run_index.clear()
        self._plans.clear()
        self._tries.clear()
        self._accumulators.clear()
        self._observations.clear()
        self._stability.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
