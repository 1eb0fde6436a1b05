"""`!voice` in game chat: a one-time link to the players' voice page, told to that player alone as a clickable line.

The link opens the host's voice page with an invite bound to the player and the server (host/invites.py); it goes
out in a `tellraw` to the player by name, so nobody else sees it. A server without an enabled `[voice_page]` answers
why there is no link.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from host.invites import InviteSigner, invite_link
from host.profiles.schema import ServerProfile
from integrations.minecraft.commands import CommandArgumentError, player_name, tellraw_player, text_json
from integrations.minecraft.rcon_packets import MAX_REQUEST_BODY, request_body_size

VOICE_COMMAND = "!voice"
LINK_LABEL = "[Open the voice page]"
DISABLED = "voice in the browser is not enabled on this server"
COOLDOWN_S = 10.0  # one link per player this often: a `!voice` flood costs one RCON command per player, not per line
MAX_TRACKED = 4096


class InviteCooldown:
    """Whether a player may get another link now; remembers at most `MAX_TRACKED` players (the oldest are forgotten)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}

    def allow(self, player: str) -> bool:
        now = self._clock()
        if now - self._last.get(player, -COOLDOWN_S) < COOLDOWN_S:
            return False
        self._last.pop(player, None)
        self._last[player] = now
        while len(self._last) > MAX_TRACKED:
            del self._last[next(iter(self._last))]
        return True


def is_voice_command(text: str) -> bool:
    return text.strip().lower() == VOICE_COMMAND


def voice_invite(server: ServerProfile, player: str, signer: InviteSigner, *, snbt_text: bool) -> list[str]:
    """The commands that answer `player`'s `!voice`: their personal link, or why there is none."""
    page = server.voice_page
    if page is None or not page.enabled:
        return tellraw_player(player, DISABLED)
    url = invite_link(page.public_url, signer.mint(server.name, player, page.invite_minutes))
    minutes = f"{page.invite_minutes:g} minute{'s' if page.invite_minutes != 1 else ''}"
    hint = f"Talk to the NPCs with your microphone. The link is yours alone and works once, within {minutes}."
    # 1.21.5 renamed the text component's events (click_event with `url`, hover_event with `value`).
    if snbt_text:
        link = {
            "click_event": {"action": "open_url", "url": url},
            "hover_event": {"action": "show_text", "value": hint},
        }
    else:
        link = {
            "clickEvent": {"action": "open_url", "value": url},
            "hoverEvent": {"action": "show_text", "contents": hint},
        }
    component = [
        {"text": "<npc-host> Voice: "},
        {"text": LINK_LABEL, "color": "aqua", "underlined": True, **link},
        {"text": f" (works once, within {minutes})"},
    ]
    command = f"tellraw {player_name(player)} {text_json(component)}"
    if request_body_size(command) > MAX_REQUEST_BODY:
        raise CommandArgumentError(f"the voice page URL is too long for a chat link: {page.public_url[:80]}")
    return [command]
