"""Builders for every command the host sends over RCON. Arguments are data, never spliced text.

Free text only ever travels inside a JSON text component made by `json.dumps` (or an SNBT string holding one), with
`§` formatting codes and control characters removed; names, tags and dimensions are checked against strict patterns;
coordinates are finite floats formatted by us. So nothing a player or a model writes can end a string, open a new
selector, or add a command.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from host.errors import NpcHostError
from host.events import Position
from integrations.minecraft.rcon_packets import MAX_REQUEST_BODY, request_body_size

PLAYER_NAME = re.compile(r"[A-Za-z0-9_]{3,16}")
NPC_ID = re.compile(r"[a-z][a-z0-9_]{0,31}")
RESOURCE_LOCATION = re.compile(r"[a-z0-9_.-]+:[a-z0-9_./-]+")
MAX_TEXT_CHARS = 2000
CHAT_CHUNK_CHARS = 256  # the length of a player's chat message
ROOT_TAG = "npc_host"
BODY_ENTITIES = {"villager": "minecraft:villager", "armor_stand": "minecraft:armor_stand"}
_WHITESPACE_CONTROLS = str.maketrans({"\n": " ", "\r": " ", "\t": " "})


NAMED_COLORS = frozenset(
    {"black", "dark_blue", "dark_green", "dark_aqua", "dark_red", "dark_purple", "gold", "gray", "dark_gray", "blue"}
    | {"green", "aqua", "red", "light_purple", "yellow", "white"}
)
_HEX_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")


class CommandArgumentError(NpcHostError):
    code = "bad_command_argument"


@dataclass(frozen=True)
class ChatStyle:
    """How an NPC's chat line looks: `<prefix><name>: text` in `color`, with `hover` (`{name}` filled in) shown on
    mouse-over. Player chat is plain white `<name> text` and players cannot colour it, so no player can pass as an NPC.
    `snbt_text`: 1.21.5+ spells the hover `hover_event`/`value` instead of `hoverEvent`/`contents`."""

    prefix: str = "[NPC] "
    color: str = "gold"
    hover: str = "{name} is a character played by npc-host, not a player"
    snbt_text: bool = False

    def __post_init__(self) -> None:
        if self.color not in NAMED_COLORS and not _HEX_COLOR.fullmatch(self.color):
            raise CommandArgumentError(
                f"chat colour {self.color[:20]!r} is neither a Minecraft colour name nor #RRGGBB"
            )


def clean_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Drop `§` codes and control characters (line breaks become spaces) and cap the length."""
    text = text.translate(_WHITESPACE_CONTROLS)
    cleaned = "".join(ch for ch in text if ch != "§" and unicodedata.category(ch) != "Cc")
    if len(cleaned) > max_chars:
        cleaned = cleaned[: max_chars - 1] + "…"
    return cleaned


def player_name(name: str) -> str:
    if not PLAYER_NAME.fullmatch(name):
        raise CommandArgumentError(f"not a Minecraft player name (3-16 of A-Z a-z 0-9 _): {name[:40]!r}")
    return name


def npc_tag(npc_id: str) -> str:
    if not NPC_ID.fullmatch(npc_id):
        raise CommandArgumentError(f"not an NPC id (a-z, 0-9, _; starts with a letter): {npc_id[:40]!r}")
    return f"{ROOT_TAG}.{npc_id}"


def dimension_id(dimension: str) -> str:
    if not RESOURCE_LOCATION.fullmatch(dimension):
        raise CommandArgumentError(f"not a dimension id like minecraft:overworld: {dimension[:60]!r}")
    return dimension


def coord(value: float) -> str:
    if not math.isfinite(value) or abs(value) > 30_000_000:
        raise CommandArgumentError(f"coordinate out of the world: {value!r}")
    return f"{value:.3f}"


def snbt_string(value: str) -> str:
    """Quote a string for SNBT: single quotes, with backslash and single quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def text_json(component: object) -> str:
    return json.dumps(component, ensure_ascii=False, separators=(",", ":"))


def chat_component(speaker: str, text: str) -> list[dict[str, str]]:
    """A line formatted like player chat, `<npc-host> text`: the host's own answers to an operator."""
    return [{"text": f"<{clean_text(speaker, 64)}> "}, {"text": text}]


def npc_line_component(speaker: str, text: str, style: ChatStyle) -> list[dict[str, object]]:
    """An NPC's line, `[NPC] Bram: text`, coloured and with its hover text; the parts after the first inherit both."""
    name = clean_text(speaker, 64)
    hover = clean_text(style.hover.replace("{name}", name), 200)
    event = (
        {"hover_event": {"action": "show_text", "value": hover}}
        if style.snbt_text
        else {"hoverEvent": {"action": "show_text", "contents": hover}}
    )
    head: dict[str, object] = {"text": "", "color": style.color, **event}
    return [head, {"text": f"{clean_text(style.prefix, 32)}{name}: "}, {"text": text}]


def nearby_selector(x: float, y: float, z: float, radius: float) -> str:
    if not math.isfinite(radius) or radius <= 0:
        raise CommandArgumentError(f"range must be a positive number: {radius!r}")
    return f"@a[x={coord(x)},y={coord(y)},z={coord(z)},distance=..{coord(radius)}]"


def tellraw_nearby(speaker: str, text: str, at: Position, radius: float, style: ChatStyle) -> list[str]:
    """An NPC's line to the players within `radius` of a point, split to fit RCON."""
    prefix = f"execute in {dimension_id(at.dimension)} run tellraw {nearby_selector(at.x, at.y, at.z, radius)} "
    return _tellraw_chunks(prefix, text, lambda chunk: npc_line_component(speaker, chunk, style))


def tellraw_player(player: str, text: str, speaker: str = "npc-host") -> list[str]:
    """Lines to one player only (answers to an operator's `!npc` command)."""
    return _tellraw_chunks(f"tellraw {player_name(player)} ", text, lambda chunk: chat_component(speaker, chunk))


def _tellraw_chunks(prefix: str, text: str, component: Callable[[str], object]) -> list[str]:
    def build(chunk: str) -> str:
        return prefix + text_json(component(chunk))

    chunks = split_text(clean_text(text), lambda chunk: request_body_size(build(chunk)) <= MAX_REQUEST_BODY)
    return [build(chunk) for chunk in chunks]


def split_text(text: str, fits: Callable[[str], bool], max_chars: int = CHAT_CHUNK_CHARS) -> list[str]:
    """Cut text into pieces that `fits` accepts, at spaces where possible; the pieces join back to `text`."""
    chunks: list[str] = []
    rest = text
    while rest:
        size = min(len(rest), max_chars)
        while size > 1 and not fits(rest[:size]):
            size = max(1, size * 3 // 4)
        if size < len(rest):
            space = rest.rfind(" ", 0, size)
            if space > size // 2:
                size = space + 1
        chunks.append(rest[:size])
        rest = rest[size:]
    return chunks or [""]


def custom_name_nbt(name: str, *, json_in_string: bool = True) -> str:
    """`CustomName` value: a JSON component in an SNBT string (up to 1.21.4), or an SNBT component (1.21.5+)."""
    component = text_json({"text": clean_text(name, 64)})
    return snbt_string(component) if json_in_string else component


def summon_body(npc_id: str, name: str, kind: str, at: Position, *, json_in_string: bool = True) -> str:
    """A body at `at`, facing `at.yaw`, tagged so it can be found (and killed) again after any restart."""
    entity = BODY_ENTITIES.get(kind)
    if entity is None:
        raise CommandArgumentError(f"unknown body kind {kind!r}; expected one of {sorted(BODY_ENTITIES)}")
    tags = ",".join(json.dumps(tag) for tag in (ROOT_TAG, npc_tag(npc_id)))
    nbt = (
        f"{{CustomName:{custom_name_nbt(name, json_in_string=json_in_string)},CustomNameVisible:1b,NoAI:1b,"
        f"Invulnerable:1b,PersistenceRequired:1b,Silent:1b,Rotation:[{coord(at.yaw)}f,0.0f],Tags:[{tags}]}}"
    )
    return f"execute in {dimension_id(at.dimension)} run summon {entity} {_xyz(at)} {nbt}"


def kill_body(npc_id: str) -> str:
    return f"kill @e[tag={npc_tag(npc_id)}]"


def face(npc_id: str, x: float, y: float, z: float) -> str:
    """Turn an NPC's body towards a point (a player's eyes) without moving it."""
    return f"execute as @e[tag={npc_tag(npc_id)},limit=1] at @s run tp @s ~ ~ ~ facing {coord(x)} {coord(y)} {coord(z)}"


def teleport_body(npc_id: str, at: Position) -> str:
    return f"execute in {dimension_id(at.dimension)} run tp @e[tag={npc_tag(npc_id)},limit=1] {_xyz(at)}"


def step_body(npc_id: str, at: Position, facing: Position) -> str:
    """One step of a walk: the body moves a little and looks where it goes (or at the player it follows)."""
    return (
        f"execute in {dimension_id(at.dimension)} run tp @e[tag={npc_tag(npc_id)},limit=1] {_xyz(at)} "
        f"facing {_xyz(facing)}"
    )


def give(player: str, item: str, count: int) -> str:
    if not RESOURCE_LOCATION.fullmatch(item):
        raise CommandArgumentError(f"not an item id like minecraft:bread: {item[:60]!r}")
    if not 1 <= count <= 64:
        raise CommandArgumentError(f"a give is 1 to 64 items, not {count}")
    return f"give {player_name(player)} {item} {count}"


def _xyz(at: Position) -> str:
    return f"{coord(at.x)} {coord(at.y)} {coord(at.z)}"


def list_players() -> str:
    return "list"


_DATA_PATHS = frozenset({"Pos", "Rotation", "Dimension"})


def data_get(player: str, path: str) -> str:
    if path not in _DATA_PATHS:
        raise CommandArgumentError(f"unsupported entity data path {path!r}")
    return f"data get entity {player_name(player)} {path}"


def data_get_all(path: str) -> str:
    """One entity-data value of every online player in one command (their answers come back concatenated)."""
    if path not in _DATA_PATHS:
        raise CommandArgumentError(f"unsupported entity data path {path!r}")
    return f"execute as @a run data get entity @s {path}"
