"""Finding a server or an NPC by what a user typed: NPCs by id, name or alias, case-insensitively; a miss lists the
choices and the closest one. Every command that takes an NPC resolves it here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from host.profiles.problems import ProfileError
from host.profiles.schema import NpcProfile
from host.suggest import did_you_mean


class UnknownNpcError(ProfileError):
    code = "unknown_npc"


def _is_only_the_name(text: str, npc: NpcProfile) -> bool:
    """Whether `text` is nothing but the NPC's id, name or an alias, case, punctuation and spacing aside: `Hilde`,
    `captain hilde` and `hilde,` all name theirs."""
    words = _words(text)
    return bool(words) and words in {_words(name) for name in (npc.id, npc.name, *npc.aliases)}


def _words(text: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", text.casefold()))


def find_npc(npcs: Mapping[str, NpcProfile], server: str, wanted: str) -> NpcProfile:
    for npc in npcs.values():
        if _is_only_the_name(wanted, npc):
            return npc
    names = [name for npc in npcs.values() for name in (npc.id, npc.name, *npc.aliases)]
    listed = ", ".join(f"{npc.id} ({npc.name})" for npc in sorted(npcs.values(), key=lambda npc: npc.id)) or "none"
    raise UnknownNpcError(f"server '{server}' has no NPC '{wanted}'{did_you_mean(wanted, names)}; NPCs: {listed}")


def unknown_server(wanted: str, known: Iterable[str], root: Path) -> UnknownNpcError:
    names = sorted(known)
    return UnknownNpcError(
        f"no server named '{wanted}' under {root}{did_you_mean(wanted, names)}; servers: {', '.join(names) or 'none'}"
        " (the profiles folder is NPC_HOST_PROFILES_DIR)",
        code="unknown_server",
    )
