"""Wire enums: ``StrEnum`` members compare equal to their JSON strings."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CallKind",
    "PromptRole",
    "BlockContentType",
    "ProvenanceLabel",
    "SensitivityLabel",
    "StabilityClass",
]


class CallKind(StrEnum):
    LLM = "llm"
    TOOL = "tool"


class PromptRole(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class BlockContentType(StrEnum):
    TEXT = "text"
    TOOL_SCHEMA = "tool_schema"
    TOOL_RESULT = "tool_result"
    STRUCTURED_OUTPUT = "structured_output"
    IMAGE = "image"


class ProvenanceLabel(StrEnum):
    SYSTEM = "system"
    DEVELOPER = "developer"
    USER = "user"
    TOOL = "tool"
    RETRIEVAL = "retrieval"
    MEMORY = "memory"


class SensitivityLabel(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    RESTRICTED = "restricted"


class StabilityClass(StrEnum):
    STABLE = "stable"
    SEMI_STABLE = "semi_stable"
    VARIABLE = "variable"
