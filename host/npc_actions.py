"""What an NPC may be asked to *do*: action tags in a model's reply (`[follow]`, `[walk well]`, `[give bread]`) and
operators' `!npc act` commands, parsed into one typed request. Parsing only; whether the NPC may do it, and how the
game does it, is the game adapter's business (integrations/minecraft/actions.py).

Tags are written like emotion tags and, like them, never spoken or shown (host/brain/sentences.py strips them):

    [follow]            follow the player being answered          [stop]          stop following or walking
    [walk <place>]      walk to a waypoint of the NPC's profile   [look]          turn to the player
    [give <item>]       give one of an item from the NPC's stock  [give 2 bread]  give two
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from host.errors import NpcHostError

ActionVerb = Literal["follow", "stop", "walk", "look", "give"]
VERBS: tuple[ActionVerb, ...] = ("follow", "stop", "walk", "look", "give")
_ALIASES = {"go": "walk", "goto": "walk", "face": "look"}
MAX_ACTION_CHARS = 40
MAX_ACTIONS_PER_TURN = 3  # a reply that asks for more is cut: a small model may loop on tags

# `[verb args]` with a known verb first; args are plain words (names, places, items, a count).
ACTION_TAG = re.compile(
    rf"\[\s*(?P<action>(?:{'|'.join((*VERBS, *_ALIASES))})\b[A-Za-z0-9_ :'-]{{0,{MAX_ACTION_CHARS}}}?)\s*\]",
    re.IGNORECASE,
)
_FILLER = frozenset({"to", "the", "at", "a", "an", "me", "you", "him", "her", "them", "some", "of"})


class ActionSyntaxError(NpcHostError):
    code = "action_syntax"


class ActionRequest(BaseModel):
    """One action. `target`: a player (look, follow), a waypoint (walk) or a stock item (give); None = the player
    being answered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verb: ActionVerb
    target: str | None = Field(None, max_length=32)
    count: int = Field(1, ge=1, le=64)

    def describe(self) -> str:
        parts = [self.verb, *([str(self.count)] if self.count > 1 else []), *([self.target] if self.target else [])]
        return " ".join(parts)


def action_tags(text: str) -> list[str]:
    """The action tags' contents in a reply, in order, at most `MAX_ACTIONS_PER_TURN`."""
    return [match["action"].strip() for match in ACTION_TAG.finditer(text)][:MAX_ACTIONS_PER_TURN]


def strip_action_tags(text: str) -> str:
    return ACTION_TAG.sub(" ", text)


def parse_action(text: str) -> ActionRequest:
    """`walk to the well` -> walk(target="well"); `give 2 bread` -> give(target="bread", count=2)."""
    words = [word for word in re.split(r"[\s:]+", text.strip().lower()) if word]
    if not words:
        raise ActionSyntaxError("empty action")
    verb = _ALIASES.get(words[0], words[0])
    if verb not in VERBS:
        raise ActionSyntaxError(f"unknown action {words[0][:20]!r}; known: {', '.join(VERBS)}")
    count = 1
    rest: list[str] = []
    for word in words[1:]:
        if word.isdigit() and verb == "give" and count == 1 and not rest:
            count = int(word)
        elif word not in _FILLER:
            rest.append(word)
    if len(rest) > 1 and rest[-1].isdigit() and verb == "give":
        count = int(rest.pop())
    target = "_".join(rest) or None
    if target is not None and not re.fullmatch(r"[a-z0-9_'-]{1,32}", target):
        raise ActionSyntaxError(f"action target {target[:32]!r} is not a plain name")
    if verb in {"walk", "give"} and target is None:
        raise ActionSyntaxError(f"'{verb}' needs a {'place' if verb == 'walk' else 'item'}")
    if not 1 <= count <= 64:
        raise ActionSyntaxError("a give is 1 to 64 items")
    return ActionRequest(verb=verb, target=target, count=count)
