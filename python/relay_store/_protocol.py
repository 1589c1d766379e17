"""The one interface every relay_store backend satisfies.

Callers type against :class:`StorageBackend` so that switching between the
in-memory backends and Redis is a configuration change, not a code change.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

if TYPE_CHECKING:
    from ._native import (
        AccumulatorState,
        ExecutionPlan,
        PromptIR,
        RunRecord,
        StabilityAnalysisResult,
        TrieEnvelope,
    )

__all__ = ["StorageBackend"]


@runtime_checkable
class StorageBackend(Protocol):
    """Async storage of an adaptive agent runtime's learned state (SPEC §3, §4).

    ``isinstance(obj, StorageBackend)`` only checks that the methods exist (a
    limitation of runtime-checkable protocols); the static type checker checks
    their signatures.
    """

    async def store_run(self, record: RunRecord) -> None: ...

    async def list_runs(self, agent_id: str) -> list[RunRecord]: ...

    async def store_plan(self, plan: ExecutionPlan) -> None: ...

    async def load_plan(self, agent_id: str) -> ExecutionPlan | None: ...

    async def store_trie(self, agent_id: str, envelope: TrieEnvelope) -> None: ...

    async def load_trie(self, agent_id: str) -> TrieEnvelope | None: ...

    async def store_accumulators(
        self, agent_id: str, state: AccumulatorState
    ) -> None: ...

    async def load_accumulators(self, agent_id: str) -> AccumulatorState | None: ...

    async def store_observations(
        self, agent_id: str, observations: Sequence[PromptIR]
    ) -> None: ...

    async def load_observations(self, agent_id: str) -> list[PromptIR] | None: ...

    async def store_stability(
        self, agent_id: str, result: StabilityAnalysisResult
    ) -> None: ...

    async def load_stability(
        self, agent_id: str
    ) -> StabilityAnalysisResult | None: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> None: ...
