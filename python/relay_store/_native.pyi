"""Type stubs of the Rust extension ``relay_store._native``.

Models are immutable: every attribute is a read-only property. List and map
fields come back as read-only views (``ListView``, ``MapView``) that read the
model in place; JSON fields come back as new plain values on each access, so
mutating them never changes the model. Inputs accept any sequence or mapping, enum members or their
wire strings, and ``uuid.UUID`` or its string form.
"""

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from types import GenericAlias, TracebackType
from typing import Any, ClassVar, Self, SupportsIndex, TypeAlias, TypeVar, final, overload
from uuid import UUID

from ._enums import (
    BlockContentType,
    CallKind,
    PromptRole,
    ProvenanceLabel,
    SensitivityLabel,
    StabilityClass,
)

__version__: str
# The I/O thread's spin window in microseconds, read from RELAY_STORE_IO_SPIN_US at import.
io_spin_us: int

__all__ = [
    "__version__",
    "io_spin_us",
    "ListView",
    "MapView",
    "RunRecord",
    "CallRecord",
    "ParallelHint",
    "MetadataEnvelope",
    "ParallelGroup",
    "ExecutionPlan",
    "PredictionMetrics",
    "LlmCallPrediction",
    "PredictionTrieNode",
    "TrieEnvelope",
    "RunningStats",
    "NodeAccumulators",
    "AccumulatorState",
    "TokenizationMetadata",
    "ToolSchemaHash",
    "PromptBlock",
    "PromptIR",
    "BlockStabilityScore",
    "StabilityAnalysisResult",
    "InMemoryBackend",
    "RedisBackend",
]

# A JSON value as the models return it (``json`` fields of SPEC §1).
_JsonValue: TypeAlias = (
    None | bool | int | float | str | list["_JsonValue"] | dict[str, "_JsonValue"]
)
# A JSON value as the models accept it: any sequence or string-keyed mapping.
_JsonInput: TypeAlias = (
    None
    | bool
    | int
    | float
    | str
    | Sequence["_JsonInput"]
    | Mapping[str, "_JsonInput"]
)
# The serde form of a ``tdigest::TDigest`` (see RunningStats.digest).
_TDigestDict: TypeAlias = dict[str, Any]

# ---------------------------------------------------------------------------
# views of list and map fields

_T = TypeVar("_T")
_T2 = TypeVar("_T2")
_T_co = TypeVar("_T_co", covariant=True)
_K = TypeVar("_K")
_V_co = TypeVar("_V_co", covariant=True)

@final
class ListView(Sequence[_T_co]):
    """A model's list field, read in place: O(1) to get, index and measure."""

    def __class_getitem__(cls, item: Any, /) -> GenericAlias: ...

    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, index: SupportsIndex, /) -> _T_co: ...
    @overload
    def __getitem__(self, index: slice, /) -> list[_T_co]: ...
    def __iter__(self) -> Iterator[_T_co]: ...
    def __reversed__(self) -> Iterator[_T_co]: ...
    def __contains__(self, value: object, /) -> bool: ...
    def index(
        self, value: Any, start: SupportsIndex | None = None, stop: SupportsIndex | None = None, /
    ) -> int: ...
    def count(self, value: Any, /) -> int: ...
    def __add__(self, other: list[_T] | tuple[_T, ...] | ListView[_T], /) -> list[_T_co | _T]: ...
    def __radd__(self, other: list[_T] | tuple[_T, ...] | ListView[_T], /) -> list[_T_co | _T]: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class MapView(Mapping[_K, _V_co]):
    """A model's map field, read in place, in key order."""

    def __class_getitem__(cls, item: Any, /) -> GenericAlias: ...

    def __len__(self) -> int: ...
    def __getitem__(self, key: _K, /) -> _V_co: ...
    def __iter__(self) -> Iterator[_K]: ...
    def __reversed__(self) -> Iterator[_K]: ...
    def __contains__(self, key: object, /) -> bool: ...
    def copy(self) -> dict[_K, _V_co]: ...
    def __or__(self, other: Mapping[_T, _T2], /) -> dict[_K | _T, _V_co | _T2]: ...
    def __ror__(self, other: Mapping[_T, _T2], /) -> dict[_K | _T, _V_co | _T2]: ...
    @overload
    def get(self, key: _K, default: None = None, /) -> _V_co | None: ...
    @overload
    def get(self, key: _K, default: _V_co, /) -> _V_co: ...  # type: ignore[misc]
    @overload
    def get(self, key: _K, default: _T, /) -> _V_co | _T: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

# ---------------------------------------------------------------------------
# runs

class _Model:
    """Value semantics every model shares (stub-only grouping)."""

    def replace(self, **changes: Any) -> Self: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self: ...
    @classmethod
    def from_json(cls, data: str | bytes | bytearray) -> Self: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: object, /) -> Self: ...

@final
class RunRecord(_Model):
    def __new__(
        cls,
        *,
        id: UUID | str = ...,
        agent_id: str,
        calls: Sequence[CallRecord] = ...,
        started_at: datetime = ...,
        ended_at: datetime | None = None,
    ) -> Self: ...
    @property
    def id(self) -> UUID: ...
    @property
    def agent_id(self) -> str: ...
    @property
    def calls(self) -> ListView[CallRecord]: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime | None: ...

@final
class CallRecord(_Model):
    def __new__(
        cls,
        *,
        kind: CallKind | str,
        name: str,
        started_at: datetime = ...,
        ended_at: datetime | None = None,
        metadata_snapshot: MetadataEnvelope | None = None,
        output_tokens: int | None = None,
        prompt_tokens: int | None = None,
        total_tokens: int | None = None,
        model_name: str | None = None,
        tool_call_count: int | None = None,
        annotated_request: _JsonInput = None,
        annotated_response: _JsonInput = None,
    ) -> Self: ...
    @property
    def kind(self) -> CallKind: ...
    @property
    def name(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def metadata_snapshot(self) -> MetadataEnvelope | None: ...
    @property
    def output_tokens(self) -> int | None: ...
    @property
    def prompt_tokens(self) -> int | None: ...
    @property
    def total_tokens(self) -> int | None: ...
    @property
    def model_name(self) -> str | None: ...
    @property
    def tool_call_count(self) -> int | None: ...
    @property
    def annotated_request(self) -> _JsonValue: ...
    @property
    def annotated_response(self) -> _JsonValue: ...

@final
class ParallelHint(_Model):
    def __new__(cls, *, tool_name: str, group_id: str, explicit: bool) -> Self: ...
    @property
    def tool_name(self) -> str: ...
    @property
    def group_id(self) -> str: ...
    @property
    def explicit(self) -> bool: ...

@final
class MetadataEnvelope(_Model):
    def __new__(
        cls,
        *,
        run_id: UUID | str,
        agent_id: str,
        parallel_hints: Sequence[ParallelHint] = ...,
        extensions: _JsonInput = None,
    ) -> Self: ...
    @property
    def run_id(self) -> UUID: ...
    @property
    def agent_id(self) -> str: ...
    @property
    def parallel_hints(self) -> ListView[ParallelHint]: ...
    @property
    def extensions(self) -> _JsonValue: ...

# ---------------------------------------------------------------------------
# execution plans

@final
class ParallelGroup(_Model):
    def __new__(cls, *, group_id: str, tool_names: Sequence[str] = ...) -> Self: ...
    @property
    def group_id(self) -> str: ...
    @property
    def tool_names(self) -> ListView[str]: ...

@final
class ExecutionPlan(_Model):
    def __new__(
        cls,
        *,
        agent_id: str,
        parallel_groups: Sequence[ParallelGroup] = ...,
        metadata_template: MetadataEnvelope,
    ) -> Self: ...
    @property
    def agent_id(self) -> str: ...
    @property
    def parallel_groups(self) -> ListView[ParallelGroup]: ...
    @property
    def metadata_template(self) -> MetadataEnvelope: ...

# ---------------------------------------------------------------------------
# prediction tries

@final
class PredictionMetrics(_Model):
    def __new__(
        cls,
        *,
        sample_count: int,
        mean: float,
        p50: float,
        p90: float,
        p95: float,
    ) -> Self: ...
    @property
    def sample_count(self) -> int: ...
    @property
    def mean(self) -> float: ...
    @property
    def p50(self) -> float: ...
    @property
    def p90(self) -> float: ...
    @property
    def p95(self) -> float: ...

@final
class LlmCallPrediction(_Model):
    def __new__(
        cls,
        *,
        remaining_calls: PredictionMetrics,
        interarrival_ms: PredictionMetrics,
        output_tokens: PredictionMetrics,
        latency_sensitivity: int | None = None,
    ) -> Self: ...
    @property
    def remaining_calls(self) -> PredictionMetrics: ...
    @property
    def interarrival_ms(self) -> PredictionMetrics: ...
    @property
    def output_tokens(self) -> PredictionMetrics: ...
    @property
    def latency_sensitivity(self) -> int | None: ...

@final
class PredictionTrieNode(_Model):
    def __new__(
        cls,
        *,
        name: str,
        children: Mapping[str, PredictionTrieNode] = ...,
        predictions_by_call_index: Mapping[int, LlmCallPrediction] = ...,
        predictions_any_index: LlmCallPrediction | None = None,
    ) -> Self: ...
    @property
    def name(self) -> str: ...
    @property
    def children(self) -> MapView[str, PredictionTrieNode]: ...
    @property
    def predictions_by_call_index(self) -> MapView[int, LlmCallPrediction]: ...
    @property
    def predictions_any_index(self) -> LlmCallPrediction | None: ...

@final
class TrieEnvelope(_Model):
    def __new__(
        cls,
        *,
        version: str = "1.0",
        generated_at: str = ...,
        workflow_name: str,
        root: PredictionTrieNode,
    ) -> Self: ...
    @property
    def version(self) -> str: ...
    @property
    def generated_at(self) -> str: ...
    @property
    def workflow_name(self) -> str: ...
    @property
    def root(self) -> PredictionTrieNode: ...

# ---------------------------------------------------------------------------
# accumulators

@final
class RunningStats(_Model):
    def __new__(
        cls,
        *,
        count: int = 0,
        mean: float = 0.0,
        m2: float = 0.0,
        digest: Mapping[str, Any] = ...,
    ) -> Self: ...
    @property
    def count(self) -> int: ...
    @property
    def mean(self) -> float: ...
    @property
    def m2(self) -> float: ...
    @property
    def digest(self) -> _TDigestDict: ...
    def add_sample(self, x: float) -> RunningStats: ...
    def merge(self, other: RunningStats) -> RunningStats: ...
    def compute_metrics(self) -> PredictionMetrics: ...

@final
class NodeAccumulators(_Model):
    def __new__(
        cls,
        *,
        remaining_calls: Mapping[int, RunningStats] = ...,
        interarrival_ms: Mapping[int, RunningStats] = ...,
        output_tokens: Mapping[int, RunningStats] = ...,
        sensitivity: Mapping[int, RunningStats] = ...,
        all_remaining_calls: RunningStats = ...,
        all_interarrival_ms: RunningStats = ...,
        all_output_tokens: RunningStats = ...,
        all_sensitivity: RunningStats = ...,
    ) -> Self: ...
    @property
    def remaining_calls(self) -> MapView[int, RunningStats]: ...
    @property
    def interarrival_ms(self) -> MapView[int, RunningStats]: ...
    @property
    def output_tokens(self) -> MapView[int, RunningStats]: ...
    @property
    def sensitivity(self) -> MapView[int, RunningStats]: ...
    @property
    def all_remaining_calls(self) -> RunningStats: ...
    @property
    def all_interarrival_ms(self) -> RunningStats: ...
    @property
    def all_output_tokens(self) -> RunningStats: ...
    @property
    def all_sensitivity(self) -> RunningStats: ...

@final
class AccumulatorState(_Model):
    def __new__(cls, *, nodes: Mapping[str, NodeAccumulators] = ...) -> Self: ...
    @property
    def nodes(self) -> MapView[str, NodeAccumulators]: ...

# ---------------------------------------------------------------------------
# prompt observations and stability

@final
class TokenizationMetadata(_Model):
    def __new__(cls, *, model_family: str, token_count: int) -> Self: ...
    @property
    def model_family(self) -> str: ...
    @property
    def token_count(self) -> int: ...

@final
class ToolSchemaHash(_Model):
    def __new__(cls, *, tool_name: str, schema_hash: str) -> Self: ...
    @property
    def tool_name(self) -> str: ...
    @property
    def schema_hash(self) -> str: ...

@final
class PromptBlock(_Model):
    def __new__(
        cls,
        *,
        span_id: str,
        sequence_index: int,
        role: PromptRole | str,
        content: str,
        content_type: BlockContentType | str,
        provenance: ProvenanceLabel | str,
        sensitivity: SensitivityLabel | str = SensitivityLabel.PUBLIC,
        token_metadata: TokenizationMetadata | None = None,
    ) -> Self: ...
    @property
    def span_id(self) -> str: ...
    @property
    def sequence_index(self) -> int: ...
    @property
    def role(self) -> PromptRole: ...
    @property
    def content(self) -> str: ...
    @property
    def content_type(self) -> BlockContentType: ...
    @property
    def provenance(self) -> ProvenanceLabel: ...
    @property
    def sensitivity(self) -> SensitivityLabel: ...
    @property
    def token_metadata(self) -> TokenizationMetadata | None: ...

@final
class PromptIR(_Model):
    def __new__(
        cls,
        *,
        ir_id: UUID | str = ...,
        blocks: Sequence[PromptBlock] = ...,
        tool_schema_hashes: Sequence[ToolSchemaHash] | None = None,
        structured_output_schema_id: str | None = None,
        source_request_hash: str | None = None,
        created_at: datetime = ...,
    ) -> Self: ...
    @property
    def ir_id(self) -> UUID: ...
    @property
    def blocks(self) -> ListView[PromptBlock]: ...
    @property
    def tool_schema_hashes(self) -> ListView[ToolSchemaHash] | None: ...
    @property
    def structured_output_schema_id(self) -> str | None: ...
    @property
    def source_request_hash(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...

@final
class BlockStabilityScore(_Model):
    def __new__(
        cls,
        *,
        span_id: str,
        classification: StabilityClass | str,
        score: float,
        confidence: float,
        observation_count: int,
    ) -> Self: ...
    @property
    def span_id(self) -> str: ...
    @property
    def classification(self) -> StabilityClass: ...
    @property
    def score(self) -> float: ...
    @property
    def confidence(self) -> float: ...
    @property
    def observation_count(self) -> int: ...

@final
class StabilityAnalysisResult(_Model):
    def __new__(
        cls,
        *,
        scores: Sequence[BlockStabilityScore] = ...,
        stable_prefix_length: int,
        stable_prefix_fingerprint: str | None = None,
        total_observations: int,
    ) -> Self: ...
    @property
    def scores(self) -> ListView[BlockStabilityScore]: ...
    @property
    def stable_prefix_length(self) -> int: ...
    @property
    def stable_prefix_fingerprint(self) -> str | None: ...
    @property
    def total_observations(self) -> int: ...

# ---------------------------------------------------------------------------
# backends

class _NativeBackend:
    """The storage methods both native backends share (stub-only grouping)."""

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
    async def load_stability(self, agent_id: str) -> StabilityAnalysisResult | None: ...
    async def close(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> None: ...

@final
class InMemoryBackend(_NativeBackend):
    """Process-local storage (SPEC §4); data lives as long as the object."""

    def __new__(cls) -> Self: ...
@final
class RedisBackend(_NativeBackend):
    """Storage in Redis, with NeMo Relay's key layout (SPEC §2)."""

    @staticmethod
    async def connect(
        url: str,
        key_prefix: str = "nemo_relay:",
        *,
        connect_timeout: float = 5.0,
        response_timeout: float = 5.0,
        run_cache_bytes: int = 33554432,
        client_tracking: bool = True,
    ) -> RedisBackend: ...
    @property
    def url(self) -> str:
        """The connection URL with the password replaced by ``***``."""
    @property
    def key_prefix(self) -> str: ...
    def run_cache_info(self) -> dict[str, int]:
        """How ``list_runs`` has used its cache of decoded runs: ``hits``,
        ``misses``, ``tracked_hits`` (hits not read from Redis at all),
        ``entries``, ``bytes``, ``max_bytes``, and ``tracking`` (1 while
        Redis tracks the cached runs for this backend). Raises
        :class:`StorageError` once the backend is closed."""
