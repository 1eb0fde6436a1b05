"""Asking the advisor model: the digests, each NPC's profile summary and its current recommendations go in; a JSON
`AdvisorAnswer` comes out. The prompt is documented in docs/advisor.md; keep the two in step.

Where the backend supports it the answer is constrained to the schema (OpenAI `response_format`, Ollama `format`,
llama.cpp grammar). An answer that still fails validation is sent back once with the validation error; a second bad
answer fails the pass with reason "invalid_output".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from host.advisor.answer import AdvisorAnswer, answer_schema, parse_answer
from host.advisor.condense import CHARS_PER_TOKEN_ESTIMATE, NpcDigest
from host.llm.base import LLM, ChatMessage, GenerationOptions, complete
from host.profiles.schema import AdvisorModelSpec, NpcProfile
from host.store.records import ActiveAdvice

PROFILE_CHARS = 600
ERROR_CHARS = 1500

ADVISOR_SYSTEM = """You are the story advisor of a role-play game server. Characters (NPCs) are played by a small \
language model that sees only its own profile and recent lines. You read digests of their latest conversations and \
write short recommendations that steer each character's next replies.

For each character listed, give:
- steering: what the character should do or say next (stay in character, follow up on a player's request, \
move a story on), each an instruction to the character in one sentence;
- facts: facts the players revealed about themselves that the character should remember ("Alice is a blacksmith");
- mood: the character's mood now, one or two words, or null;
- warnings: problems in its replies: broke_character (spoke as an AI or assistant, left the world), \
contradicted_lore (said something its profile or the world contradicts), leaked_secret (revealed a secret it must \
keep), repeated_itself (said the same thing again and again); each with a one-sentence explanation.
Every item has a priority from 1 (nice to have) to 5 (must follow now) and expires_in_minutes: how long it stays \
useful (10 for a passing moment, 1440 for a lasting fact).
Give nothing for a character whose digest shows nothing worth changing. Do not repeat current recommendations that \
still apply. Never tell a character to reveal a secret.

Answer with one JSON object only, no text around it, of this schema:
{schema}"""

RETRY_MESSAGE = (
    "That answer was not valid: {error}\n"
    "Answer again with only the corrected JSON object, following the schema exactly."
)


class InvalidAnswerError(Exception):
    """The advisor model answered twice with output that does not validate."""


@dataclass
class AdviseUsage:
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NpcBrief:
    """What the advisor is told about one NPC."""

    profile: NpcProfile
    digest: NpcDigest
    current: Sequence[ActiveAdvice]


def build_messages(server: str, briefs: Sequence[NpcBrief]) -> list[ChatMessage]:
    schema = answer_schema(brief.profile.id for brief in briefs)
    system = ADVISOR_SYSTEM.format(schema=json.dumps(schema, separators=(",", ":")))
    sections = [f"Server: {server}"]
    for brief in briefs:
        sections.append(_npc_section(brief))
    sections.append(f"Answer for these characters (by id): {', '.join(brief.profile.id for brief in briefs)}.")
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content="\n\n".join(sections))]


def _npc_section(brief: NpcBrief) -> str:
    npc, persona = brief.profile, brief.profile.persona
    profile = " ".join(part for part in (persona.description, persona.personality, persona.scenario) if part)
    lines = [f"## Character id {npc.id}: {npc.name}", f"Profile: {profile[:PROFILE_CHARS]}"]
    if persona.secrets:
        lines.append("Secrets it must keep: " + "; ".join(persona.secrets))
    if brief.current:
        lines.append("Current recommendations:")
        lines.extend(f"- [{item.kind}, priority {item.priority}] {item.text}" for item in brief.current)
    else:
        lines.append("Current recommendations: none")
    lines.append(f"What happened since the last pass ({brief.digest.lines} lines): {brief.digest.digest}")
    return "\n".join(lines)


async def advise(
    llm: LLM, spec: AdvisorModelSpec, server: str, briefs: Sequence[NpcBrief], usage: AdviseUsage
) -> AdvisorAnswer:
    """The validated answer; raises InvalidAnswerError after a retry, LLMError when the endpoint fails. What the
    calls spent is added to `usage`, also when they fail."""
    messages = build_messages(server, briefs)
    npcs = {brief.profile.id for brief in briefs}
    options = GenerationOptions(
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
        model=spec.model,
        json_schema=None if spec.structured_output == "off" else answer_schema(npcs),
    )
    for attempt in range(2):
        reply = await complete(llm, messages, options)
        usage.calls += 1
        usage.tokens_in += sum(len(m.content) for m in messages) // CHARS_PER_TOKEN_ESTIMATE
        usage.tokens_out += reply.pieces
        try:
            return parse_answer(reply.text, npcs)
        except ValidationError as exc:
            error = _describe(exc)
            usage.errors.append(error)
            if attempt == 0:
                messages = [
                    *messages,
                    ChatMessage(role="assistant", content=reply.text[:4000]),
                    ChatMessage(role="user", content=RETRY_MESSAGE.format(error=error)),
                ]
    raise InvalidAnswerError(usage.errors[-1])


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "(the whole answer)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)[:ERROR_CHARS]
