"""relay_store: the learned state of adaptive agent runtimes, in Redis or in memory.

Data is interchangeable with NVIDIA NeMo Relay's adaptive plugin: the same JSON
documents under the same Redis keys.
"""

from __future__ import annotations

from ._enums import (
    BlockContentType,
    CallKind,
    PromptRole,
    ProvenanceLabel,
    SensitivityLabel,
    StabilityClass,
)
from .errors import (
    InvalidConfigError,
    RelayStoreError,
    SerializationError,
    StorageError,
)
from ._native import (
    AccumulatorState,
    BlockStabilityScore,
    CallRecord,
    ExecutionPlan,
    InMemoryBackend,
    ListView,
    LlmCallPrediction,
    MapView,
    MetadataEnvelope,
    NodeAccumulators,
    ParallelGroup,
    ParallelHint,
    PredictionMetrics,
    PredictionTrieNode,
    PromptBlock,
    PromptIR,
    RedisBackend,
    RunningStats,
    RunRecord,
    StabilityAnalysisResult,
    TokenizationMetadata,
    ToolSchemaHash,
    TrieEnvelope,
)
from ._pure import PyInMemoryBackend
from ._protocol import StorageBackend
from ._factory import open_backend

__version__ = "0.1.0"

__all__ = [
    # models
    "CallKind",
    "CallRecord",
    "RunRecord",
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
    "PromptRole",
    "BlockContentType",
    "ProvenanceLabel",
    "SensitivityLabel",
    "TokenizationMetadata",
    "ToolSchemaHash",
    "PromptBlock",
    "PromptIR",
    "StabilityClass",
    "BlockStabilityScore",
    "StabilityAnalysisResult",
    # read-only views of models' list and map fields
    "ListView",
    "MapView",
    # backends
    "StorageBackend",
    "InMemoryBackend",
    "PyInMemoryBackend",
    "RedisBackend",
    "open_backend",
    # errors
    "RelayStoreError",
    "InvalidConfigError",
    "StorageError",
    "SerializationError",
]
