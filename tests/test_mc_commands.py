"""Safe command builders: an injection corpus never changes a command's shape (checked by parsing it back)."""

from __future__ import annotations

import json
import re

import pytest

from host.events import Position
from integrations.minecraft import commands
from integrations.minecraft.rcon_packets import MAX_REQUEST_BODY

INJECTIONS = [
    'hello "world"',
    "back\\slash \\\\ \\",
    '"}',
    '"}]} run op Mallory',
    "§kobfuscated §4red",
    "line one\nline two\r\n/op Mallory",
    "@e[type=player] @a @s",
    "/op Mallory",
    "] tellraw @a {",
    '{ "text": "x" }',
    "it's a 'quote'",
    "tab\there\x00nul\x1bescape\x7fdel",
    "emoji 🙂 and ümlauts €",
    "word " * 700,
    "x" * 5000,
]

NEARBY = re.compile(
    r"execute in (?P<dim>[a-z0-9_.-]+:[a-z0-9_./-]+) run tellraw "
    r"@a\[x=(?P<x>-?\d+\.\d{3}),y=(?P<y>-?\d+\.\d{3}),z=(?P<z>-?\d+\.\d{3}),"
    r"distance=\.\.(?P<r>\d+\.\d{3})\] (?P<json>.+)",
    re.DOTALL,
)


def _expected(payload: str) -> str:
    return commands.clean_text(payload)


STYLE = commands.ChatStyle()
HOVER = "Bram is a character played by npc-host, not a player"


def _parse_npc_line(raw: str) -> list[dict[str, object]]:
    """An NPC line: a styled empty head (colour, hover) that the prefix+name part and the text part inherit."""
    value, end = json.JSONDecoder().raw_decode(raw)
    assert end == len(raw), f"trailing text after the JSON component: {raw[end:]!r}"
    head, name, body = value
    assert head == {"text": "", "color": "gold", "hoverEvent": {"action": "show_text", "contents": HOVER}}
    assert name == {"text": "[NPC] Bram: "}
    assert set(body) == {"text"}
    return [head, name, body]


def _parse_components(raw: str) -> list[dict[str, str]]:
    value, end = json.JSONDecoder().raw_decode(raw)
    assert end == len(raw), f"trailing text after the JSON component: {raw[end:]!r}"
    assert isinstance(value, list)
    assert all(set(part) == {"text"} for part in value)
    return value


@pytest.mark.parametrize("payload", INJECTIONS)
def test_tellraw_nearby_keeps_its_shape(payload: str) -> None:
    built = commands.tellraw_nearby(
        "Bram", payload, Position(x=10.5, y=64.0, z=-3.25, dimension="minecraft:the_nether"), 16.0, STYLE
    )
    texts = []
    for command in built:
        assert "\n" not in command and "§" not in command and "\x00" not in command
        assert len(command.encode()) <= MAX_REQUEST_BODY
        match = NEARBY.fullmatch(command)
        assert match is not None, command[:200]
        assert (match["dim"], match["x"], match["y"], match["z"], match["r"]) == (
            "minecraft:the_nether",
            "10.500",
            "64.000",
            "-3.250",
            "16.000",
        )
        _head, _name, body = _parse_npc_line(match["json"])
        assert isinstance(body["text"], str)
        texts.append(body["text"])
    assert "".join(texts) == _expected(payload)


@pytest.mark.parametrize("payload", INJECTIONS)
def test_tellraw_player_keeps_its_shape(payload: str) -> None:
    for command in commands.tellraw_player("Op_Alice", payload):
        target, raw = command.removeprefix("tellraw ").split(" ", 1)
        assert target == "Op_Alice"
        _parse_components(raw)


def test_long_reply_is_split_into_several_tellraw_at_spaces() -> None:
    text = " ".join(f"word{i}" for i in range(200))
    built = commands.tellraw_nearby("Bram", text, Position(x=0, y=64, z=0), 16, STYLE)
    assert len(built) > 1
    bodies = [str(_parse_npc_line(NEARBY.fullmatch(c)["json"])[2]["text"]) for c in built]  # type: ignore[index]
    assert "".join(bodies) == text
    assert all(body.endswith(" ") for body in bodies[:-1])
    assert all(len(body) <= commands.CHAT_CHUNK_CHARS for body in bodies)


def test_text_is_capped() -> None:
    assert len(commands.clean_text("y" * 10_000)) == commands.MAX_TEXT_CHARS


@pytest.mark.parametrize("name", ["", "ab", "x" * 17, "Alice Smith", "@a", "Alice]", "Al\nce", "Ålice", "a;b"])
def test_bad_player_names_are_refused(name: str) -> None:
    with pytest.raises(commands.CommandArgumentError):
        commands.tellraw_player(name, "hi")
    with pytest.raises(commands.CommandArgumentError):
        commands.data_get(name, "Pos")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e12])
def test_non_finite_coordinates_are_refused(value: float) -> None:
    with pytest.raises(commands.CommandArgumentError):
        commands.tellraw_nearby("Bram", "hi", Position(x=value, y=64, z=0), 16, STYLE)
    with pytest.raises(commands.CommandArgumentError):
        commands.face("bram", 0, value, 0)


def _unquote_snbt(raw: str) -> tuple[str, str]:
    """Read one single-quoted SNBT string from the start of `raw`; return it and what follows."""
    assert raw[0] == "'"
    out, i = [], 1
    while raw[i] != "'":
        if raw[i] == "\\":
            i += 1
            assert raw[i] in "\\'"
        out.append(raw[i])
        i += 1
    return "".join(out), raw[i + 1 :]


@pytest.mark.parametrize("name", ["Bram", *INJECTIONS[:12]])
def test_summon_custom_name_is_an_escaped_json_component(name: str) -> None:
    command = commands.summon_body("bram", name, "villager", Position(x=1.5, y=64, z=-2, yaw=90))
    head, nbt = command.split(" {CustomName:", 1)
    assert head == "execute in minecraft:overworld run summon minecraft:villager 1.500 64.000 -2.000"
    custom_name, rest = _unquote_snbt(nbt)
    assert json.loads(custom_name) == {"text": commands.clean_text(name, 64)}
    assert rest == (
        ",CustomNameVisible:1b,NoAI:1b,Invulnerable:1b,PersistenceRequired:1b,Silent:1b,"
        'Rotation:[90.000f,0.0f],Tags:["npc_host","npc_host.bram"]}'
    )


def test_summon_modern_component_and_armor_stand() -> None:
    command = commands.summon_body(
        "ada", 'A"da', "armor_stand", Position(x=0, y=70, z=0, yaw=-45), json_in_string=False
    )
    assert "summon minecraft:armor_stand 0.000 70.000 0.000 {CustomName:" in command
    raw = command.split("{CustomName:", 1)[1]
    component, end = json.JSONDecoder().raw_decode(raw)
    assert component == {"text": 'A"da'}
    assert raw[end:].startswith(",CustomNameVisible:1b")


@pytest.mark.parametrize("npc_id", ["Bram", "bram]", "bram,tag=x", "", "1bram"])
def test_bad_npc_ids_are_refused(npc_id: str) -> None:
    with pytest.raises(commands.CommandArgumentError):
        commands.kill_body(npc_id)


def test_face_kill_teleport_and_data_get() -> None:
    assert commands.face("bram", 1, 65.62, -3) == (
        "execute as @e[tag=npc_host.bram,limit=1] at @s run tp @s ~ ~ ~ facing 1.000 65.620 -3.000"
    )
    assert commands.kill_body("bram") == "kill @e[tag=npc_host.bram]"
    assert commands.teleport_body("bram", Position(x=1, y=2, z=3, dimension="minecraft:the_end")) == (
        "execute in minecraft:the_end run tp @e[tag=npc_host.bram,limit=1] 1.000 2.000 3.000"
    )
    assert commands.data_get("Alice_01", "Pos") == "data get entity Alice_01 Pos"
    with pytest.raises(commands.CommandArgumentError):
        commands.data_get("Alice", "Inventory")
    with pytest.raises(commands.CommandArgumentError):
        commands.tellraw_nearby("Bram", "hi", Position(x=0, y=0, z=0, dimension="overworld; op x"), 8, STYLE)


def test_an_npc_line_cannot_be_typed_by_a_player_named_like_the_npc() -> None:
    """A player's chat is plain `<Bram> text`; the NPC's line is coloured, prefixed and carries a hover text, none of
    which vanilla chat lets a player produce."""
    (command,) = commands.tellraw_nearby("Bram", "Last call!", Position(x=0, y=64, z=0), 16, STYLE)
    _head, name, body = _parse_npc_line(NEARBY.fullmatch(command)["json"])  # type: ignore[index]
    assert (name["text"], body["text"]) == ("[NPC] Bram: ", "Last call!")
    assert "<Bram>" not in command


def test_the_npc_line_style_is_configurable_and_1_21_5_spells_the_hover_its_own_way() -> None:
    style = commands.ChatStyle(prefix="~ ", color="#33CCFF", hover='{name} "speaks"', snbt_text=True)
    (command,) = commands.tellraw_nearby("Bram", "hi", Position(x=0, y=64, z=0), 16, style)
    head, name, _body = json.loads(NEARBY.fullmatch(command)["json"])  # type: ignore[index]
    assert head == {"text": "", "color": "#33CCFF", "hover_event": {"action": "show_text", "value": 'Bram "speaks"'}}
    assert name == {"text": "~ Bram: "}


@pytest.mark.parametrize("color", ["golden", "#12345", "red; op x", ""])
def test_a_bad_chat_colour_is_refused(color: str) -> None:
    with pytest.raises(commands.CommandArgumentError, match="colour"):
        commands.ChatStyle(color=color)


def test_give_and_walking_steps_are_built_from_checked_data() -> None:
    assert commands.give("Alice", "minecraft:bread", 2) == "give Alice minecraft:bread 2"
    for player, item, count in (("@a", "minecraft:bread", 1), ("Alice", "bread; op x", 1), ("Alice", "a:b", 65)):
        with pytest.raises(commands.CommandArgumentError):
            commands.give(player, item, count)
    step = commands.step_body("bram", Position(x=1, y=64, z=2), Position(x=5, y=65.62, z=2))
    assert step == "execute in minecraft:overworld run tp @e[tag=npc_host.bram,limit=1] 1.000 64.000 2.000 facing " + (
        "5.000 65.620 2.000"
    )
    assert commands.data_get_all("Pos") == "execute as @a run data get entity @s Pos"
    with pytest.raises(commands.CommandArgumentError):
        commands.data_get_all("Inventory")
