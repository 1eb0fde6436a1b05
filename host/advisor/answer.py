"""What the advisor model must answer: per NPC steering notes, facts about players, a mood and warnings, each with a
priority and an expiry. Validated by pydantic; the same models give the JSON schema sent to backends that constrain
their output (OpenAI `response_format`, Ollama `format`, llama.cpp grammars).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

WarningKind = Literal["broke_character", "contradicted_lore", "leaked_secret", "repeated_itself"]
MAX_ITEMS = 5
MAX_TEXT_CHARS = 300
MAX_EXPIRY_MINUTES = 7 * 24 * 60

ItemText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_CHARS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AdviceItem(_Strict):
    """One recommendation: 1 = nice to have ... 5 = must follow now; it stops applying after `expires_in_minutes`."""

    text: ItemText
    priority: int = Field(ge=1, le=5)
    expires_in_minutes: int = Field(ge=1, le=MAX_EXPIRY_MINUTES)


class AdviceWarning(AdviceItem):
    kind: WarningKind


class NpcAdvice(_Strict):
    npc: str = Field(description="the NPC's id, exactly as given")
    steering: list[AdviceItem] = Field(default=[], max_length=MAX_ITEMS)
    facts: list[AdviceItem] = Field(default=[], max_length=MAX_ITEMS, description="facts learned about players")
    mood: AdviceItem | None = None
    warnings: list[AdviceWarning] = Field(default=[], max_length=MAX_ITEMS)

    @field_validator("npc")
    @classmethod
    def _known_npc(cls, value: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("npcs")
        if known is not None and value not in known:
            raise ValueError(f"unknown NPC {value!r}; answer only for {', '.join(sorted(known))}")
        return value

    def is_empty(self) -> bool:
        return not (self.steering or self.facts or self.mood or self.warnings)


class AdvisorAnswer(_Strict):
    npcs: list[NpcAdvice] = Field(max_length=64)


def answer_schema(npcs: Iterable[str]) -> dict[str, Any]:
    """The JSON schema of `AdvisorAnswer` for this pass's NPCs (their ids as an enum, so a constrained backend can
    only name them), inlined (some grammar converters do not follow `$ref`s) and without descriptions."""
    schema = _inline(AdvisorAnswer.model_json_schema())
    npc_item = schema["properties"]["npcs"]["items"]
    npc_item["properties"]["npc"] = {"type": "string", "enum": sorted(npcs)}
    return schema


def parse_answer(text: str, npcs: set[str]) -> AdvisorAnswer:
    """The validated answer; raises pydantic.ValidationError (its message goes back to the model on the retry).
    Text around the JSON object (a model's preamble or code fence) is ignored."""
    start, end = text.find("{"), text.rfind("}")
    body = text[start : end + 1] if 0 <= start < end else text
    return AdvisorAnswer.model_validate_json(body, context={"npcs": npcs})


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                return resolve(definitions[ref.rsplit("/", 1)[-1]])
            # Titles and descriptions only lengthen the prompt; the system message explains the fields.
            return {key: resolve(value) for key, value in node.items() if key not in ("title", "description")}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
