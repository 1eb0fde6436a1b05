"""Prompt assembly for chat models, in documented layers (docs/prompt.md), fitted to the model's context budget.

Messages, in order:
1. system: the persona block - rendered from the profile and its server alone (persona, constant lore, rules),
   byte-for-byte stable, so the backend's prompt-prefix cache is reused from one turn to the next (no player names,
   times or keyword lore in it). The only system message.
2. the profile's example dialogue as user/assistant turns (stable too, so it stays in the cached prefix).
3. recent exchanges with this player as user/assistant turns, oldest first.
4. user: the turn's own context - lore the conversation activated, admin notes, advisor advice, the rolling summary,
   the player's language - as bracketed notes, then the player's line as `Alice: ...`.

Nothing comes after the player's line: small models recite or "answer" trailing instructions. Player text is
neutralised (chat-template tokens, control characters, newlines and square brackets removed) so nothing a player
says can pose as a message, a speaker or a context note. When the whole does not fit the budget (context - max
reply tokens), the oldest exchanges go first, then the summary, advice, notes and activated lore (lowest priority
first); the persona block (with its constant lore), the examples and the player's line always stay.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from host.brain.action_prompt import action_rules
from host.brain.language import detect_language, language_name
from host.brain.lore import ActiveLore, LoreSelection, is_activated, select_lore
from host.brain.tokens import TokenCounter, approx_token_count
from host.errors import NpcHostError
from host.llm.base import ChatMessage
from host.profiles.schema import NpcProfile, ServerProfile

# Role markers around every chat message (ChatML: `<|im_start|>role\n` ... `<|im_end|>\n`).
MESSAGE_OVERHEAD_TOKENS = 4
EXAMPLE_PLAYER = "Traveler"
# Chat-template control tokens (ChatML, Llama 2, BOS/EOS) that must neither enter a prompt from a player nor be spoken.
TEMPLATE_TOKENS = re.compile(r"<\|[^<>|]{0,40}\|>|</?s>|\[/?INST\]|<<\/?SYS>>", re.IGNORECASE)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# SillyTavern separates example conversations with this line; it is no speech.
_EXAMPLE_SEPARATOR = "<START>"


class Exchange(BaseModel):
    """One earlier back-and-forth between a player and this NPC."""

    model_config = ConfigDict(frozen=True)

    player: str = Field(min_length=1, max_length=64)
    player_text: str
    npc_text: str


class TurnContext(BaseModel):
    """What the caller knows about this turn: who speaks, what they said, and the conversation so far."""

    model_config = ConfigDict(frozen=True)

    player: str = Field(min_length=1, max_length=64)
    text: str
    language: str | None = Field(None, description="the player's language when known (from STT); else detected")
    notes: tuple[str, ...] = Field((), description="admin notes for this NPC, oldest first")
    advice: tuple[str, ...] = Field((), description="advisor recommendations, most important first")
    summary: str = Field("", description="rolling summary of this player's earlier conversation")
    recent: tuple[Exchange, ...] = Field((), description="recent exchanges, oldest first")


@dataclass(frozen=True, slots=True)
class PromptLimits:
    context_tokens: int = 2048
    lore_fraction: float = 0.25
    lore_scan_exchanges: int = 2


@dataclass(frozen=True, slots=True)
class LayerUse:
    name: str
    tokens: int
    items: int = 1
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class PromptPlan:
    messages: tuple[ChatMessage, ...]
    layers: tuple[LayerUse, ...]
    lore_included: tuple[str, ...]
    lore_left_out: tuple[str, ...]  # activated, but over the lore budget or squeezed out by the context budget
    total_tokens: int
    budget_tokens: int
    # The persona block and the examples: the same on every turn of the NPC, so a backend's prefix cache keeps them
    # and a turn evaluates only `total_tokens - prefix_tokens`.
    prefix_tokens: int


class PromptBudgetError(NpcHostError):
    code = "prompt_budget"


def neutralise(text: str) -> str:
    """Player text made safe to put in a prompt: no template tokens, no brackets, everything on one line."""
    text = TEMPLATE_TOKENS.sub(" ", text)
    text = _CONTROL_CHARS.sub(" ", text).replace("<|", "< |").replace("|>", "| >")
    text = text.replace("[", "(").replace("]", ")")
    return " ".join(text.split())


def speaker_name(player: str) -> str:
    return neutralise(player).replace(":", " ").strip() or "Someone"


def speaker_line(player: str, text: str) -> str:
    """How a player's words enter the prompt: `Alice: ...`, one line, neutralised."""
    return f"{speaker_name(player)}: {neutralise(text)}"


def quote_player_line(player: str, text: str) -> str:
    """A player's words reported in the third person (`Alice says: "..."`), for prompts about a conversation."""
    return f'{speaker_name(player)} says: "{neutralise(text).replace(chr(34), chr(39))}"'


def _fill(text: str, name: str, user: str) -> str:
    return text.replace("{{char}}", name).replace("{{user}}", user).strip()


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def answer_rules(profile: NpcProfile) -> list[str]:
    """The persona block's rules, positive and few. The guard also uses them to spot a reply reciting them."""
    name, safety = profile.name, profile.safety
    rules = [
        f"Speak as {name}, in your own words, to the person in front of you.",
        f"Say at most {_plural(profile.llm.max_reply_sentences, 'short sentence')} of plain speech.",
        "Notes in square brackets are for you alone: use what they tell you.",
    ]
    if profile.persona.secrets:
        rules.append("Keep your secrets: talk around them.")
    if safety.refuse_topics:
        rules.append(f'When someone brings up {", ".join(safety.refuse_topics)}, say: "{safety.refusal_line}"')
    rules.extend(_fill(rule, name, "the player") for rule in safety.stay_in_character)
    if profile.persona.post_history_instructions.strip():
        rules.append(_fill(profile.persona.post_history_instructions, name, "the player"))
    pinned = profile.persona.language
    rules.append(
        f"Always speak {language_name(pinned)}." if pinned else "Answer in the language the person speaks to you."
    )
    if profile.voice.emotions:
        tags = ", ".join(f"[{emotion}]" for emotion in sorted(profile.voice.emotions))
        rules.append(f"You may start a sentence with one mood tag: {tags}.")
    rules.extend(action_rules(profile))  # actions the profile allows: host/brain/action_prompt.py
    return rules


def constant_lore(
    profile: NpcProfile,
    server: ServerProfile,
    *,
    limits: PromptLimits = PromptLimits(),
    count_tokens: TokenCounter = approx_token_count,
) -> LoreSelection:
    """The `constant` lore entries the persona block holds: NPC entries first on equal priority, within the lore
    budget. They depend on the profiles alone, so they belong in the cached prefix rather than in every turn."""
    entries = [entry for entry in (*profile.lore, *server.lore) if entry.constant]
    return select_lore(entries, (), budget_tokens=lore_budget(limits), count_tokens=count_tokens)


def lore_budget(limits: PromptLimits) -> int:
    return int(limits.context_tokens * limits.lore_fraction)


def persona_block(
    profile: NpcProfile,
    server: ServerProfile,
    *,
    limits: PromptLimits = PromptLimits(),
    count_tokens: TokenCounter = approx_token_count,
) -> str:
    """Layer 1. Depends on the profile and server only, so it is identical for every turn of this NPC."""
    persona, name = profile.persona, profile.name

    def fill(text: str) -> str:
        return _fill(text, name, "the player")

    intro = fill(persona.system_prompt) or f"You are {name}, who lives in this {server.game} world."
    parts = [f"{intro}\n{fill(persona.description)}"]
    for label, value in (
        ("Personality", persona.personality),
        ("Situation", persona.scenario),
        ("How you speak", persona.speaking_style),
    ):
        if value.strip():
            parts.append(f"{label}: {fill(value)}")
    if persona.goals:
        parts.append("Your goals:\n" + _bullets([fill(goal) for goal in persona.goals]))
    known = constant_lore(profile, server, limits=limits, count_tokens=count_tokens).included
    if known:
        parts.append("What you know:\n" + _bullets([" ".join(fill(item.entry.content).split()) for item in known]))
    if persona.secrets:
        parts.append("Your secrets, which you keep to yourself:\n" + _bullets(persona.secrets))
    parts.append("How you answer:\n" + _bullets(answer_rules(profile)))
    return "\n\n".join(parts)


def example_turns(profile: NpcProfile) -> list[ChatMessage]:
    """Layer 2: the example dialogue as real turns (`{{user}}:` lines as the user, the rest as the NPC)."""
    messages: list[ChatMessage] = []
    for line in profile.persona.example_dialogue:
        if line.strip() == _EXAMPLE_SEPARATOR:
            continue
        speaker, colon, said = line.partition(":")
        if colon and speaker.strip() == "{{user}}":
            message = ChatMessage(role="user", content=speaker_line(EXAMPLE_PLAYER, _fill(said, profile.name, "you")))
        else:
            text = said if colon and speaker.strip() == "{{char}}" else line
            message = ChatMessage(role="assistant", content=_fill(text, profile.name, EXAMPLE_PLAYER))
        if messages and messages[-1].role == message.role:  # chat templates want the roles to alternate
            message = ChatMessage(role=message.role, content=f"{messages.pop().content}\n{message.content}")
        messages.append(message)
    return messages


def turn_notes(
    profile: NpcProfile,
    *,
    player: str,
    language: str | None,
    lore: Sequence[str],
    notes: Sequence[str],
    advice: Sequence[str],
    summary: str,
) -> list[str]:
    """Layer 4's bracketed notes, in the order the model reads them; the player's line comes right after."""
    lines = [f"[{text}]" for text in lore]
    lines += [f"[Game master: {text}]" for text in notes]
    lines += [f"[Advice: {text}]" for text in advice]
    if summary.strip():
        lines.append(f"[Earlier with {speaker_name(player)}: {summary.strip()}]")
    if language and language != "en" and not profile.persona.language:
        lines.append(f"[{speaker_name(player)} speaks {language_name(language)}: answer in {language_name(language)}.]")
    return lines


def build_prompt(
    profile: NpcProfile,
    server: ServerProfile,
    context: TurnContext,
    *,
    limits: PromptLimits = PromptLimits(),
    count_tokens: TokenCounter = approx_token_count,
) -> PromptPlan:
    """The messages for this turn and a record of what went in. Raises PromptBudgetError if even the persona
    block, the examples and the player's line do not fit."""

    def cost(content: str) -> int:
        return count_tokens(content) + MESSAGE_OVERHEAD_TOKENS if content else 0

    def line_cost(content: str) -> int:  # a note or the player's line inside the final user message
        return count_tokens(content) + 1

    budget = limits.context_tokens - profile.llm.max_reply_tokens
    persona = persona_block(profile, server, limits=limits, count_tokens=count_tokens)
    known = constant_lore(profile, server, limits=limits, count_tokens=count_tokens)
    examples = example_turns(profile)
    line = speaker_line(context.player, context.text)
    language = context.language or detect_language(context.text)
    required = (
        cost(persona)
        + sum(cost(m.content) for m in examples)
        + MESSAGE_OVERHEAD_TOKENS
        + line_cost(line)
        + sum(
            line_cost(note)
            for note in turn_notes(
                profile, player=context.player, language=language, lore=(), notes=(), advice=(), summary=""
            )
        )
    )
    if required > budget:
        raise PromptBudgetError(
            f"NPC {profile.id!r}: the persona block, examples and the player's line need {required} tokens but only "
            f"{budget} fit ({limits.context_tokens} context - {profile.llm.max_reply_tokens} reply); shorten the "
            "profile or raise the context size"
        )

    scanned = [context.text]
    for exchange in context.recent[-limits.lore_scan_exchanges :] if limits.lore_scan_exchanges else ():
        scanned += [exchange.player_text, exchange.npc_text]
    selection = select_lore(  # the constant entries are in the persona block already, and used its budget first
        [
            *(entry for entry in (*profile.lore, *server.lore) if not entry.constant),
            # A constant entry is also repeated next to the line when the line itself names one of its keys: a small
            # model uses a fact right before the question more often than one in its system message. (Not for
            # keys in the history: the system message holds it already, and each repeat costs the turn tokens.)
            *(
                keyed
                for entry in (*profile.lore, *server.lore)
                if entry.constant and entry.keys
                if is_activated(keyed := entry.model_copy(update={"constant": False}), context.text)
            ),
        ],
        scanned,
        budget_tokens=lore_budget(limits) - known.tokens,
        count_tokens=count_tokens,
    )
    lore, notes, advice = list(selection.included), list(context.notes), list(context.advice)
    summary = context.summary
    exchanges = list(context.recent)
    exchange_costs = [cost(speaker_line(e.player, e.player_text)) + cost(e.npc_text) for e in exchanges]

    def lore_texts() -> list[str]:
        return [_fill(item.entry.content, profile.name, speaker_name(context.player)) for item in lore]

    def notes_now() -> list[str]:
        return turn_notes(
            profile,
            player=context.player,
            language=language,
            lore=lore_texts(),
            notes=notes,
            advice=advice,
            summary=summary,
        )

    def total() -> int:
        return (
            cost(persona)
            + sum(cost(m.content) for m in examples)
            + sum(exchange_costs)
            + MESSAGE_OVERHEAD_TOKENS
            + sum(line_cost(note) for note in notes_now())
            + line_cost(line)
        )

    lore_dropped: list[ActiveLore] = []
    while total() > budget:
        if exchanges:
            exchanges.pop(0)
            exchange_costs.pop(0)
        elif summary:
            summary = ""
        elif advice:
            advice.pop()
        elif notes:
            notes.pop(0)
        else:
            lore_dropped.append(lore.pop())

    prefix_tokens = cost(persona) + sum(cost(m.content) for m in examples)
    messages = [ChatMessage(role="system", content=persona), *examples]
    for exchange in exchanges:
        messages.append(ChatMessage(role="user", content=speaker_line(exchange.player, exchange.player_text)))
        messages.append(ChatMessage(role="assistant", content=exchange.npc_text))
    messages.append(ChatMessage(role="user", content="\n".join([*notes_now(), line])))

    def note_tokens(texts: Sequence[str]) -> int:
        return sum(line_cost(text) for text in texts)

    layers = (
        LayerUse("persona", cost(persona)),
        LayerUse("examples", sum(cost(m.content) for m in examples), len(examples)),
        LayerUse("exchanges", sum(exchange_costs), len(exchanges), len(context.recent) - len(exchanges)),
        LayerUse("lore", note_tokens(lore_texts()), len(lore), len(lore_dropped)),
        LayerUse("notes", note_tokens(notes), len(notes), len(context.notes) - len(notes)),
        LayerUse("advice", note_tokens(advice), len(advice), len(context.advice) - len(advice)),
        LayerUse("summary", count_tokens(summary), int(bool(summary)), int(bool(context.summary) and not summary)),
        LayerUse("player_line", line_cost(line) + MESSAGE_OVERHEAD_TOKENS),
    )
    return PromptPlan(
        messages=tuple(messages),
        layers=layers,
        lore_included=tuple(item.label for item in (*known.included, *lore)),
        lore_left_out=tuple(item.label for item in (*known.over_budget, *selection.over_budget, *lore_dropped)),
        total_tokens=total(),
        prefix_tokens=prefix_tokens,
        budget_tokens=budget,
    )
