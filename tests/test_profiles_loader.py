"""Loading profile folders: the example village, and bad files reported as `path:line: field: message`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from host.profiles.loader import ServerLoad, load_all, load_server
from host.profiles.problems import ProfileError

GUARD = """\
id = "guard"
name = "Guard"

[persona]
description = "A guard of the village."

[world]
position = { x = 1, y = 64, z = 1 }
"""


@pytest.fixture
def village(tmp_path: Path, repo_root: Path) -> Path:
    """A copy of the example server folder the test may break."""
    return Path(shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "example"))


def rendered(load: ServerLoad) -> list[str]:
    return [str(problem) for problem in load.problems]


def test_example_village_loads_without_problems(repo_root: Path) -> None:
    (load,) = load_all(repo_root / "npc_profiles")
    assert rendered(load) == []
    assert load.name == "example"
    assert sorted(load.npcs) == ["birch", "bram", "hilde"]
    assert load.server is not None
    assert load.server.rcon is not None and load.server.rcon.password_env == "NPC_HOST_RCON_PASSWORD_EXAMPLE"
    for npc in load.npcs.values():
        assert 2 <= npc.llm.max_reply_sentences <= 3
        assert any(entry.constant for entry in npc.lore)
        assert any(entry.secondary_keys for entry in npc.lore)
        assert npc.persona.first_message and npc.persona.example_dialogue and npc.voice.emotions
    # A fresh clone's NPCs can act: Bram hands out bread within limits, Hilde walks the village, the tree only talks.
    bram, hilde, birch = (load.npcs[npc_id].actions for npc_id in ("bram", "hilde", "birch"))
    assert bram.allowed == ["look", "give"] and list(bram.stock) == ["bread"]
    bread = bram.stock["bread"]
    assert bread.item == "minecraft:bread" and bread.stock and bread.per_player_per_day == 1 and bread.per_day
    assert set(hilde.allowed) == {"follow", "stop", "walk", "look"} and not hilde.stock
    gate = hilde.waypoints["gate"]
    assert (gate.x, gate.z) == (load.npcs["hilde"].world.position.x, load.npcs["hilde"].world.position.z)
    assert birch.allowed == [] and not birch.waypoints and not birch.stock


def test_server_defaults_fill_in_what_the_npc_does_not_set(village: Path) -> None:
    load = load_server(village)
    bram = load.npcs["bram"]
    assert bram.llm.max_reply_tokens == 90  # from [defaults.llm]
    assert bram.llm.temperature == 0.8  # bram.toml's own value wins
    assert bram.world.dimension == "minecraft:overworld"


def test_nested_default_tables_merge_with_the_npc_own(village: Path) -> None:
    server = village / "server.toml"
    server.write_text(server.read_text() + "\n[defaults.voice.emotions.happy]\nspeed = 1.5\nvolume = 2.0\n")
    load = load_server(village)
    assert rendered(load) == []
    assert load.npcs["hilde"].voice.emotions["happy"].volume == 2.0  # inherited
    assert load.npcs["hilde"].voice.emotions["happy"].speed == 1.0  # hilde.toml sets its own happy speed
    assert load.npcs["birch"].voice.emotions["happy"].speed == 0.8
    assert load.npcs["bram"].voice.emotions["angry"].volume == 1.3  # bram's other tags stay


def test_relative_paths_are_resolved_against_the_server_folder(village: Path) -> None:
    voices = village / "voices"
    voices.mkdir()
    (voices / "deep.onnx").write_bytes(b"onnx")
    (voices / "deep.onnx.json").write_text("{}")
    (village / "guard.toml").write_text(GUARD + '\n[voice]\nmodel = "voices/deep.onnx"\n')
    load = load_server(village)
    assert rendered(load) == []
    assert load.npcs["guard"].voice.model == str((voices / "deep.onnx").resolve())
    assert load.server is not None and load.server.log_path == str(village / "minecraft/logs/latest.log")


def test_unknown_field_names_its_line_and_the_likely_field(village: Path) -> None:
    path = village / "guard.toml"
    path.write_text(GUARD + "\n[llm]\ntemprature = 0.5\n")
    load = load_server(village)
    assert rendered(load) == [f"{path}:11: llm.temprature: unknown field; did you mean 'temperature'?"]
    # One bad NPC file does not stop the others.
    assert sorted(load.npcs) == ["birch", "bram", "hilde"]
    assert load.rejected_files == {path}


def test_unknown_field_without_a_close_match_lists_the_fields(village: Path) -> None:
    path = village / "guard.toml"
    path.write_text(GUARD.replace('name = "Guard"', 'name = "Guard"\nzzz = 1'))
    assert rendered(load_server(village)) == [
        f"{path}:3: zzz: unknown field; expected one of: id, name, aliases, persona, voice, world, llm, lore, safety, "
        "actions"
    ]


def test_out_of_range_value_names_its_line_and_the_limit(village: Path) -> None:
    path = village / "guard.toml"
    path.write_text(GUARD + "hearing_range = 500.0\n")
    assert rendered(load_server(village)) == [
        f"{path}:9: world.hearing_range: Input should be less than or equal to 256 (got 500.0)"
    ]


def test_value_inside_an_inline_table_points_at_its_line(village: Path) -> None:
    path = village / "guard.toml"
    path.write_text(GUARD.replace("x = 1", 'x = "east"'))
    assert rendered(load_server(village)) == [
        f"{path}:8: world.position.x: Input should be a valid number, unable to parse string as a number (got 'east')"
    ]


def test_toml_syntax_error_gives_the_line(village: Path) -> None:
    path = village / "guard.toml"
    path.write_text(GUARD.replace('"Guard"', '"Guard'))
    load = load_server(village)
    assert rendered(load) == [f"{path}:2: toml: Illegal character '\\n' (column 14)"]
    assert sorted(load.npcs) == ["birch", "bram", "hilde"]


def test_duplicate_npc_id_names_both_files(village: Path) -> None:
    path = village / "zz_copy.toml"
    path.write_text(GUARD.replace('id = "guard"', 'id = "bram"'))
    load = load_server(village)
    assert rendered(load) == [f"{path}:1: id: duplicate NPC id 'bram'; already defined in {village / 'bram.toml'}"]
    assert load.npc_files["bram"] == village / "bram.toml"


def test_missing_voice_file_is_named(village: Path) -> None:
    path = village / "guard.toml"
    path.write_text(GUARD + '\n[voice]\nmodel = "voices/missing.onnx"\n')
    missing = (village / "voices" / "missing.onnx").resolve()
    assert rendered(load_server(village)) == [f"{path}:11: voice.model: voice file not found: {missing}"]


def test_voice_without_its_config_file_is_named(village: Path) -> None:
    (village / "deep.onnx").write_bytes(b"onnx")
    path = village / "guard.toml"
    path.write_text(GUARD + '\n[voice]\nmodel = "deep.onnx"\n')
    config = (village / "deep.onnx").resolve()
    assert rendered(load_server(village)) == [
        f"{path}:11: voice.model: the voice's config file is missing: {config}.json"
    ]


def test_missing_embedded_model_file_is_named(village: Path) -> None:
    path = village / "guard.toml"
    path.write_text(GUARD + '\n[llm]\nbackend = "embedded"\nmodel = "models/tiny.gguf"\n')
    missing = (village / "models" / "tiny.gguf").resolve()
    assert rendered(load_server(village)) == [f"{path}:12: llm.model: model file not found: {missing}"]


def test_bad_id_pattern_is_explained_in_words(village: Path) -> None:
    path = village / "guard.toml"
    path.write_text(GUARD.replace('id = "guard"', 'id = "Guard-1"'))
    assert rendered(load_server(village)) == [
        f"{path}:1: id: must be 1-32 lowercase letters, digits or underscores, starting with a letter (got 'Guard-1')"
    ]


def test_missing_required_field_points_at_its_table_header(village: Path) -> None:
    path = village / "guard.toml"
    path.write_text(GUARD.replace('description = "A guard of the village."', 'personality = "Stern."'))
    assert rendered(load_server(village)) == [f"{path}:4: persona.description: required field is missing"]


def test_lore_entry_problems_point_at_the_entry(village: Path) -> None:
    path = village / "guard.toml"
    path.write_text(GUARD + '\n[[lore]]\nkeys = ["gate"]\ncontent = "ok"\n\n[[lore]]\ncontent = "No keys."\n')
    assert rendered(load_server(village)) == [f"{path}:14: lore[1]: a lore entry needs keys unless it is constant"]


def test_lore_keys_the_matcher_would_refuse_are_reported_at_load(village: Path) -> None:
    path = village / "guard.toml"
    path.write_text(GUARD + '\n[[lore]]\nkeys = ["gate", "/[unclosed/"]\ncontent = "ok"\n')
    assert rendered(load_server(village)) == [
        f"{path}:11: lore[0].keys[1]: lore key '/[unclosed/': invalid regular expression: "
        "unterminated character set at position 0"
    ]


def test_a_bad_default_is_blamed_on_server_toml_once(village: Path) -> None:
    server = village / "server.toml"
    text = server.read_text().replace("max_reply_tokens = 90", "max_reply_tokens = 4")
    server.write_text(text)
    line = text.splitlines().index("max_reply_tokens = 4") + 1
    load = load_server(village)
    assert rendered(load) == [
        f"{server}:{line}: defaults.llm.max_reply_tokens: Input should be greater than or equal to 8 (got 4)"
    ]
    assert load.npcs == {}


def test_a_bad_server_toml_stops_that_server_only(tmp_path: Path, village: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "server.toml").write_text('name = "other"\noperators = ["x"]\n')
    (other / "guard.toml").write_text(GUARD)
    village_load, other_load = load_all(tmp_path)
    assert sorted(village_load.npcs) == ["birch", "bram", "hilde"]
    assert other_load.server is None and other_load.npcs == {}
    assert rendered(other_load) == [
        f"{other / 'server.toml'}:2: operators[0]: must be a Minecraft player name: "
        "3-16 letters, digits or underscores (got 'x')"
    ]


def test_folder_without_server_toml_is_reported(tmp_path: Path) -> None:
    lost = tmp_path / "lost"
    lost.mkdir()
    (lost / "guard.toml").write_text(GUARD)
    (load,) = load_all(tmp_path)
    assert rendered(load) == [f"{lost / 'server.toml'}:1: (file): missing: a server folder needs one"]


def test_duplicate_server_names_are_reported(tmp_path: Path, village: Path) -> None:
    twin = Path(shutil.copytree(village, tmp_path / "twin"))
    first, second = load_all(tmp_path)
    assert sorted(first.npcs) == ["birch", "bram", "hilde"]
    assert second.npcs == {}
    assert rendered(second) == [
        f"{twin / 'server.toml'}:4: name: duplicate server name 'example'; already used by {village / 'server.toml'}"
    ]


def test_missing_profiles_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="profiles folder not found"):
        load_all(tmp_path / "nowhere")


def test_a_password_pasted_where_its_variable_name_belongs_is_never_repeated(village: Path) -> None:
    server = village / "server.toml"
    server.write_text(server.read_text().replace('"NPC_HOST_RCON_PASSWORD_EXAMPLE"', '"hunter2-s3cret"'))
    load = load_server(village)
    (problem,) = rendered(load)
    assert problem.startswith(f"{server}:15: rcon.password_env: must be an environment variable name")
    assert "hunter2" not in problem


def test_connection_values_read_the_environment(village: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINECRAFT_RCON_HOST", raising=False)
    monkeypatch.delenv("MINECRAFT_LOG", raising=False)
    monkeypatch.setenv("MINECRAFT_RCON_PORT", "25580")
    server = load_server(village).server
    assert server is not None and server.rcon is not None
    assert (server.rcon.host, server.rcon.port) == ("127.0.0.1", 25580)  # a default, and the variable
    assert server.log_path == str(village / "minecraft" / "logs" / "latest.log")


def test_an_unset_variable_without_default_is_a_problem_with_its_line(village: Path) -> None:
    server = village / "server.toml"
    server.write_text(server.read_text().replace('"${MINECRAFT_RCON_HOST:-127.0.0.1}"', '"${NPC_TEST_NO_SUCH_VAR}"'))
    (problem,) = rendered(load_server(village))
    assert problem.startswith(f"{server}:12: rcon.host: environment variable NPC_TEST_NO_SUCH_VAR is not set")


def test_a_profile_symlink_leading_outside_the_profiles_folder_is_refused(tmp_path: Path, village: Path) -> None:
    outside = tmp_path / "elsewhere" / "guard.toml"
    outside.parent.mkdir()
    outside.write_text(GUARD)
    (village / "guard.toml").symlink_to(outside)
    inside = village / "guard_copy.txt"
    inside.write_text(GUARD.replace('"guard"', '"guard2"'))
    (village / "guard2.toml").symlink_to(inside)  # a link within the folder is fine

    (load,) = load_all(village)
    assert "guard" not in load.npcs and "guard2" in load.npcs
    (problem,) = [p for p in load.problems if p.path.name == "guard.toml"]
    assert "outside the profiles folder" in problem.message and str(outside) in problem.message


def test_a_server_folder_symlinked_from_outside_is_refused(tmp_path: Path, village: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "example").symlink_to(village)
    (load,) = load_all(profiles)
    assert load.server is None
    assert any("outside the profiles folder" in p.message for p in load.problems)
