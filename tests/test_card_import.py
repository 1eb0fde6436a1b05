"""Importing SillyTavern character cards (JSON and PNG, V1/V2/V3) into NPC profiles that pass `profiles check`."""

from __future__ import annotations

import base64
import json
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import host.cli.profiles_cmd  # noqa: F401  (registers the commands on the app)
from host.cli import app
from host.profiles.card_import import CardData, card_to_profile, import_card, npc_id_for, read_card
from host.profiles.loader import load_server
from host.profiles.png_text import PngTextError, png_text_chunks
from host.profiles.problems import ProfileError
from host.profiles.schema import SelectiveLogic, Vec3

SERAPHINA = Path(__file__).parent / "fixtures" / "cards" / "default_Seraphina.png"

V2_CARD: dict[str, Any] = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Mira Stonehand",
        "description": "<BOT> is a dwarf smith who forges for <USER>.\r\nShe is proud of her anvil.",
        "personality": "gruff, loyal",
        "scenario": "{{Char}} works the forge while {{user}} waits.",
        "first_mes": "What do you want? I'm busy.",
        "mes_example": "<START>\n{{user}}: Can you fix my sword?\n{{char}}: Leave it on the bench.\n"
        "Come back at dusk.\n<START>\n{{user}}: How much?\n{{char}}: Ten emeralds.",
        "system_prompt": "{{original}} Speak like a blacksmith.",
        "post_history_instructions": "Stay gruff.",
        "creator": "tester",
        "creator_notes": "Made for the tests.",
        "tags": ["dwarf", "smith"],
        "alternate_greetings": ["Oh, you again."],
        "extensions": {},
        "character_book": {
            "entries": [
                {
                    "keys": ["anvil"],
                    "content": "The anvil came from her grandmother.",
                    "insertion_order": 40,
                    "enabled": True,
                    "constant": False,
                    "selective": False,
                    "secondary_keys": ["ignored"],
                    "comment": "Anvil",
                    "extensions": {},
                },
                {
                    "keys": ["sword"],
                    "secondary_keys": ["broken"],
                    "selective": True,
                    "content": "AND_ANY entry.",
                    "insertion_order": 100,
                    "enabled": True,
                    "constant": False,
                    "extensions": {"selectiveLogic": 0},
                },
                {
                    "keys": ["sword"],
                    "secondary_keys": ["elf"],
                    "selective": True,
                    "content": "NOT_ALL entry.",
                    "insertion_order": 100,
                    "enabled": True,
                    "constant": False,
                    "extensions": {"selectiveLogic": 1},
                },
                {
                    "keys": ["sword"],
                    "secondary_keys": ["orc"],
                    "selective": True,
                    "content": "NOT_ANY entry.",
                    "insertion_order": 100,
                    "enabled": True,
                    "constant": False,
                    "extensions": {"selectiveLogic": 2},
                },
                {
                    "keys": ["sword", "axe"],
                    "secondary_keys": ["steel", "iron"],
                    "selective": True,
                    "content": "AND_ALL entry.",
                    "insertion_order": 100,
                    "enabled": False,
                    "constant": False,
                    "extensions": {"selectiveLogic": 3},
                },
                {
                    "keys": [],
                    "content": "The forge never goes cold.",
                    "constant": True,
                    "insertion_order": 500,
                    "enabled": True,
                    "extensions": {},
                },
                {
                    "keys": [],
                    "content": "Nobody can trigger this.",
                    "constant": False,
                    "comment": "orphan",
                    "insertion_order": 1,
                    "enabled": True,
                    "extensions": {},
                },
            ]
        },
    },
}


def card_json(name: str, spec: str = "chara_card_v3") -> dict[str, Any]:
    return {"spec": spec, "spec_version": "3.0", "data": {"name": name, "description": f"{name} is a test."}}


def png(*text_chunks: tuple[bytes, bytes]) -> bytes:
    """A real 1x1 PNG with the given (chunk type, body) text chunks before the image data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    chunks = b"".join(chunk(kind, body) for kind, body in text_chunks)
    image = chunk(b"IDAT", zlib.compress(b"\x00\x00"))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunks + image + chunk(b"IEND", b"")


def text_chunk(keyword: str, card: dict[str, Any]) -> tuple[bytes, bytes]:
    return b"tEXt", keyword.encode() + b"\0" + base64.b64encode(json.dumps(card).encode())


def compressed_itxt_chunk(keyword: str, card: dict[str, Any]) -> tuple[bytes, bytes]:
    encoded = base64.b64encode(json.dumps(card).encode())
    return b"iTXt", keyword.encode() + b"\0\x01\x00en\0\0" + zlib.compress(encoded)


@pytest.fixture
def server_dir(tmp_path: Path, repo_root: Path) -> Path:
    return Path(shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "profiles" / "example"))


def test_seraphina_png_becomes_a_profile_that_passes_check(server_dir: Path) -> None:
    result = import_card(SERAPHINA, server_dir, position=Vec3(x=3, y=64, z=-2))
    assert result.path == server_dir / "seraphina.toml"
    load = load_server(server_dir)
    assert load.problems == []
    npc = load.npcs["seraphina"]
    # The TOML written round-trips exactly (the server's defaults add llm and voice settings on load).
    assert (npc.name, npc.persona, npc.lore) == (result.npc.name, result.npc.persona, result.npc.lore)
    assert npc.name == "Seraphina"
    assert npc.persona.first_message.startswith("*You wake with a start")
    assert '{{user}}: "Describe your traits?"' in npc.persona.description
    assert "\r" not in npc.persona.description
    assert npc.world.position == Vec3(x=3, y=64, z=-2)
    assert [entry.keys for entry in npc.lore] == [
        ["eldoria", "wood", "forest", "magical forest"],
        ["shadowfang", "beast", "monster", "monsters", "beasts"],
        ["glade", "safe haven", "refuge"],
        ["power", "magic", "ability"],
    ]
    assert all(entry.priority == 100 and entry.enabled and not entry.constant for entry in npc.lore)
    assert result.path.read_text().startswith("# Imported from default_Seraphina.png (chara_card_v2)")


def test_v2_json_card_maps_every_field(server_dir: Path, tmp_path: Path) -> None:
    card = tmp_path / "mira.json"
    card.write_text(json.dumps(V2_CARD))
    result = import_card(card, server_dir)
    npc = load_server(server_dir).npcs["mira_stonehand"]
    # The TOML written round-trips exactly (the server's defaults add llm and voice settings on load).
    assert (npc.name, npc.persona, npc.lore) == (result.npc.name, result.npc.persona, result.npc.lore)
    assert npc.persona.description == "{{char}} is a dwarf smith who forges for {{user}}.\nShe is proud of her anvil."
    assert npc.persona.scenario == "{{char}} works the forge while {{user}} waits."
    assert npc.persona.example_dialogue == [
        "{{user}}: Can you fix my sword?",
        "{{char}}: Leave it on the bench. Come back at dusk.",
        "{{user}}: How much?",
        "{{char}}: Ten emeralds.",
    ]
    assert npc.persona.post_history_instructions == "Stay gruff."
    assert npc.persona.system_prompt == "Speak like a blacksmith."
    anvil, and_any, not_all, not_any, and_all, forge = npc.lore
    assert (anvil.name, anvil.keys, anvil.secondary_keys, anvil.priority) == ("Anvil", ["anvil"], [], 40)
    assert [e.selective_logic for e in (and_any, not_all, not_any, and_all)] == [
        SelectiveLogic.AND_ANY,
        SelectiveLogic.NOT_ALL,
        SelectiveLogic.NOT_ANY,
        SelectiveLogic.AND_ALL,
    ]
    assert and_all.secondary_keys == ["steel", "iron"] and not and_all.enabled
    assert forge.constant and forge.keys == [] and forge.priority == 500
    assert result.notes == [
        "lore entry 'orphan' skipped: it has no keys and is not constant",
        "1 alternate greeting(s) not imported (a profile has one)",
    ]
    text = result.path.read_text()
    assert "# Creator: tester" in text and "# Tags: dwarf, smith" in text and "#   Made for the tests." in text


def test_unknown_selective_logic_is_imported_as_and_any_with_a_note() -> None:
    entry = {
        "keys": ["a"],
        "secondary_keys": ["b"],
        "selective": True,
        "content": "x",
        "extensions": {"selectiveLogic": 7},
    }
    card = CardData.model_validate({"name": "N", "description": "d", "character_book": {"entries": [entry]}})
    profile, notes = card_to_profile(card, npc_id="n", position=Vec3(x=0, y=0, z=0))
    assert profile["lore"][0]["selective_logic"] == "AND_ANY"
    assert notes == ["lore entry '#0': unknown selectiveLogic 7, imported as AND_ANY"]


def test_v3_png_prefers_the_ccv3_chunk(server_dir: Path, tmp_path: Path) -> None:
    card = tmp_path / "both.png"
    card.write_bytes(
        png(text_chunk("chara", card_json("Old Name", "chara_card_v2")), text_chunk("ccv3", card_json("New Name")))
    )
    loaded = read_card(card)
    assert (loaded.spec, loaded.data.name) == ("chara_card_v3", "New Name")
    result = import_card(card, server_dir, npc_id="newcomer")
    assert load_server(server_dir).npcs["newcomer"].name == "New Name"
    assert result.path == server_dir / "newcomer.toml"


def test_compressed_itxt_chunk_is_read(tmp_path: Path) -> None:
    card = tmp_path / "itxt.png"
    card.write_bytes(png(compressed_itxt_chunk("ccv3", card_json("Zoë"))))
    assert read_card(card).data.name == "Zoë"


def test_v1_flat_json_card(server_dir: Path, tmp_path: Path) -> None:
    card = tmp_path / "v1.json"
    card.write_text(json.dumps({"name": "Tam", "description": "A farmer.", "first_mes": "Morning!", "mes_example": ""}))
    result = import_card(card, server_dir)
    assert (result.npc.id, result.npc.persona.first_message) == ("tam", "Morning!")
    assert load_server(server_dir).problems == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Old Birch", "old_birch"), ("Zoë the Brave!", "zoe_the_brave"), ("42", "npc_42"), ("A" * 40, "a" * 32)],
)
def test_npc_ids_from_names_are_valid(name: str, expected: str) -> None:
    assert npc_id_for(name) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON (line 1: Expecting property name enclosed in double quotes)"),
        (b"[1, 2]", "a card must be a JSON object"),
        (b'{"spec": "chara_card_v2", "data": {"description": "x"}}', "not a character card (name: Field required)"),
        (png(), "no character card inside (no 'ccv3' or 'chara' text chunk)"),
        (png((b"tEXt", b"chara\0***")), "the card chunk is not base64-encoded UTF-8 JSON"),
        (png()[:40], "truncated"),
        (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 2**31) + b"tEXt", "truncated 'tEXt' chunk at byte 8"),
        (png((b"iTXt", b"ccv3\0\x01\x00\0\0not zlib")), "compressed text chunk is corrupt"),
    ],
)
def test_malformed_cards_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    card = tmp_path / "bad.card"
    card.write_bytes(content)
    with pytest.raises(ProfileError) as caught:
        read_card(card)
    assert str(caught.value).startswith(f"{card}: ")
    assert message in str(caught.value)
    assert caught.value.code == "card_invalid"


def test_import_refuses_to_overwrite_or_duplicate(server_dir: Path, tmp_path: Path) -> None:
    card = tmp_path / "bram.json"
    card.write_text(json.dumps(card_json("Bram")))
    with pytest.raises(ProfileError, match=r"bram\.toml already exists; pass --force"):
        import_card(card, server_dir)
    (server_dir / "bram.toml").rename(server_dir / "innkeeper.toml")
    with pytest.raises(ProfileError, match=r"innkeeper\.toml already defines NPC 'bram'; choose another --id"):
        import_card(card, server_dir)
    assert not (server_dir / "bram.toml").exists()


runner = CliRunner()


def test_import_card_command_creates_a_server_that_passes_check(tmp_path: Path) -> None:
    root = tmp_path / "profiles"
    args = ["import-card", str(SERAPHINA), "--server", "fantasy", "--profiles-dir", str(root), "--position", "5,70,-5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"created {root / 'fantasy' / 'server.toml'} (add rcon and log_path before `npc-host run`)",
        f"wrote {root / 'fantasy' / 'seraphina.toml'}: Seraphina (seraphina), 4 lore entries",
    ]
    check = runner.invoke(app, ["profiles", "check", str(root)])
    assert check.exit_code == 0, check.output
    assert check.stdout == "fantasy: 1 NPC (seraphina)\n"
    assert load_server(root / "fantasy").npcs["seraphina"].world.position == Vec3(x=5, y=70, z=-5)

    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "already exists; pass --force" in again.stderr
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def test_import_card_command_rejects_a_bad_position(tmp_path: Path) -> None:
    args = ["import-card", str(SERAPHINA), "--server", "fantasy", "--profiles-dir", str(tmp_path), "--position", "1,x"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "expected X,Y,Z" in result.output


def test_many_small_compressed_chunks_cannot_add_up_past_the_cap() -> None:
    kilobyte = b"ccv3\0\x01\x00\0\0" + zlib.compress(b"A" * 1000)
    blob = png(*[(b"iTXt", kilobyte.replace(b"ccv3", f"k{i}".encode())) for i in range(3)])
    assert len(png_text_chunks(blob, max_inflated_bytes=3000)) == 3
    with pytest.raises(PngTextError, match="inflate to more than 2500 bytes"):
        png_text_chunks(blob, max_inflated_bytes=2500)
