"""SillyTavern character cards (V1, V2, V3; JSON or PNG) turned into an NPC profile file.

`{{char}}` and `{{user}}` stay as they are (the prompt builder fills in the NPC's and the player's names); the old
`<BOT>` / `<USER>` spellings are mapped to them. Card fields with no place in a profile (tags, alternate greetings,
creator notes) are kept as comments at the top of the file, so nothing on the card is silently lost.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from tomlkit.items import Table

from host.profiles.loader import SERVER_FILE, load_server
from host.profiles.png_text import PngTextError, png_text_chunks
from host.profiles.problems import ProfileError, describe, field_name
from host.profiles.schema import NpcProfile, SelectiveLogic, ServerProfile, Vec3

DEFAULT_POSITION = Vec3(x=0.0, y=64.0, z=0.0)
# SillyTavern stores a lore entry's secondary-key logic as a number in `extensions.selectiveLogic`.
ST_SELECTIVE_LOGIC = {
    0: SelectiveLogic.AND_ANY,
    1: SelectiveLogic.NOT_ALL,
    2: SelectiveLogic.NOT_ANY,
    3: SelectiveLogic.AND_ALL,
}
_MACRO = re.compile(r"\{\{\s*(char|user)\s*\}\}|<(BOT|USER)>", re.IGNORECASE)
_SPEAKER_PREFIX = re.compile(r"^(\{\{(char|user)\}\}|[^:\s][^:]{0,31}):")


class _CardModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _null_means_unset(cls, data: Any) -> Any:
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class CardBookEntry(_CardModel):
    keys: list[str] = []
    secondary_keys: list[str] = []
    content: str = ""
    name: str = ""
    comment: str = ""
    constant: bool = False
    selective: bool = False
    enabled: bool = True
    insertion_order: int = 100
    extensions: dict[str, Any] = {}


class CardBook(_CardModel):
    entries: list[CardBookEntry] = []


class CardData(_CardModel):
    name: str
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    creator: str = ""
    creator_notes: str = ""
    tags: list[str] = []
    alternate_greetings: list[str] = []
    character_book: CardBook | None = None


@dataclass(frozen=True)
class Card:
    source: Path
    spec: str  # chara_card_v2, chara_card_v3, or v1 for the old flat format
    data: CardData


@dataclass(frozen=True)
class ImportResult:
    path: Path
    npc: NpcProfile
    notes: list[str]  # what could not be carried over, for the user to read
    created_server: bool


def read_card(path: Path) -> Card:
    """Read a card from JSON or PNG (the `ccv3` text chunk preferred over `chara`)."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the card: {exc.strerror}", code="card_invalid") from exc
    if blob.startswith(b"\x89PNG"):
        text = _card_text_from_png(path, blob)
    else:
        try:
            text = blob.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ProfileError(f"{path}: neither a PNG nor UTF-8 JSON", code="card_invalid") from exc
    return _parse_card_json(path, text)


def import_card(
    card_path: Path,
    server_dir: Path,
    *,
    npc_id: str | None = None,
    position: Vec3 = DEFAULT_POSITION,
    overwrite: bool = False,
) -> ImportResult:
    """Write `<server_dir>/<id>.toml` from a card; the server folder and its server.toml are created if missing."""
    card = read_card(card_path)
    npc_id = npc_id or npc_id_for(card.data.name)
    profile, notes = card_to_profile(card.data, npc_id=npc_id, position=position)
    try:
        npc = NpcProfile.model_validate(profile)
    except ValidationError as exc:
        details = "; ".join(f"{field_name(tuple(e['loc']))}: {describe(e, NpcProfile)}" for e in exc.errors())
        raise ProfileError(
            f"{card_path}: the card does not make a valid profile: {details}", code="card_invalid"
        ) from exc
    target = server_dir / f"{npc.id}.toml"
    if target.exists() and not overwrite:
        raise ProfileError(f"{target} already exists; pass --force to replace it", code="profile_exists")
    created_server = _ensure_server(server_dir)
    existing = load_server(server_dir)
    if npc.id in existing.npc_files and existing.npc_files[npc.id] != target:
        raise ProfileError(
            f"{existing.npc_files[npc.id]} already defines NPC '{npc.id}'; choose another --id", code="profile_exists"
        )
    target.write_text(tomlkit.dumps(_document(card, profile)), encoding="utf-8")
    return ImportResult(target, npc, notes, created_server)


def npc_id_for(name: str) -> str:
    """A valid NPC id from a display name: 'Old Birch' -> 'old_birch', 'Zoë' -> 'zoe', '42' -> 'npc_42'."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if not slug[:1].isalpha():
        slug = f"npc_{slug}".rstrip("_")
    return slug[:32].rstrip("_")


def card_to_profile(card: CardData, *, npc_id: str, position: Vec3) -> tuple[dict[str, Any], list[str]]:
    """The profile as plain data (the shape of an NPC file), and notes on what was left out."""
    persona = {
        "description": _text(card.description),
        "personality": _text(card.personality),
        "scenario": _text(card.scenario),
        "first_message": _text(card.first_mes),
        "example_dialogue": example_lines(_text(card.mes_example)),
        # V2 lets a card's system prompt embed the frontend's own with `{{original}}`; ours is added anyway.
        "system_prompt": _text(card.system_prompt.replace("{{original}}", "")),
        "post_history_instructions": _text(card.post_history_instructions),
    }
    lore, notes = _lore(card.character_book)
    if card.alternate_greetings:
        notes.append(f"{len(card.alternate_greetings)} alternate greeting(s) not imported (a profile has one)")
    profile: dict[str, Any] = {
        "id": npc_id,
        "name": card.name.strip(),
        "persona": {key: value for key, value in persona.items() if value},
        "world": {"position": position.model_dump()},
    }
    if lore:
        profile["lore"] = lore
    return profile, notes


def example_lines(text: str) -> list[str]:
    """`mes_example` as dialogue lines: `<START>` separators dropped, a message's continuation lines joined."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.upper() == "<START>":
            continue
        if lines and not _SPEAKER_PREFIX.match(line):
            lines[-1] = f"{lines[-1]} {line}"
        else:
            lines.append(line)
    return lines


def _text(value: str) -> str:
    """Card text with Windows line ends and the macro spellings normalised to `{{char}}` / `{{user}}`."""
    return _MACRO.sub(_macro, value).replace("\r\n", "\n").strip()


def _macro(match: re.Match[str]) -> str:
    who = (match[1] or match[2]).lower()
    return "{{char}}" if who in ("char", "bot") else "{{user}}"


def _lore(book: CardBook | None) -> tuple[list[dict[str, Any]], list[str]]:
    entries: list[dict[str, Any]] = []
    notes: list[str] = []
    for index, entry in enumerate(book.entries if book else []):
        label = entry.name or entry.comment or f"#{index}"
        keys = [key.strip() for key in entry.keys if key.strip()]
        content = _text(entry.content)
        if not content:
            notes.append(f"lore entry {label!r} skipped: it has no content")
            continue
        if not keys and not entry.constant:
            notes.append(f"lore entry {label!r} skipped: it has no keys and is not constant")
            continue
        lore: dict[str, Any] = {"name": entry.name or entry.comment, "keys": keys}
        secondary = [key.strip() for key in entry.secondary_keys if key.strip()]
        # SillyTavern ignores secondary keys unless the entry is selective; so does the import.
        if entry.selective and secondary:
            number = entry.extensions.get("selectiveLogic", 0)
            logic = ST_SELECTIVE_LOGIC.get(number) if isinstance(number, int) else None
            if logic is None:
                notes.append(f"lore entry {label!r}: unknown selectiveLogic {number!r}, imported as AND_ANY")
            lore |= {"secondary_keys": secondary, "selective_logic": (logic or SelectiveLogic.AND_ANY).value}
        lore |= {"content": content, "priority": entry.insertion_order}
        lore |= {"constant": entry.constant, "enabled": entry.enabled}
        entries.append({key: value for key, value in lore.items() if value not in ("", [])})
    return entries, notes


def _card_text_from_png(path: Path, blob: bytes) -> str:
    try:
        chunks = png_text_chunks(blob)
    except PngTextError as exc:
        raise ProfileError(f"{path}: {exc}", code="card_invalid") from exc
    encoded = chunks.get("ccv3") or chunks.get("chara")
    if encoded is None:
        raise ProfileError(f"{path}: no character card inside (no 'ccv3' or 'chara' text chunk)", code="card_invalid")
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: the card chunk is not base64-encoded UTF-8 JSON", code="card_invalid") from exc


def _parse_card_json(path: Path, text: str) -> Card:
    try:
        envelope = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})", code="card_invalid") from exc
    if not isinstance(envelope, dict):
        raise ProfileError(f"{path}: a card must be a JSON object", code="card_invalid")
    spec = str(envelope.get("spec") or "v1")
    data = envelope.get("data") if isinstance(envelope.get("data"), dict) else envelope
    try:
        return Card(path, spec, CardData.model_validate(data))
    except ValidationError as exc:
        details = "; ".join(f"{field_name(tuple(e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ProfileError(f"{path}: not a character card ({details})", code="card_invalid") from exc


def _ensure_server(server_dir: Path) -> bool:
    if (server_dir / SERVER_FILE).is_file():
        return False
    try:
        ServerProfile(name=server_dir.name)
    except ValidationError as exc:
        raise ProfileError(f"{server_dir.name!r} cannot be a server name: {exc.errors()[0]['msg']}") from exc
    server_dir.mkdir(parents=True, exist_ok=True)
    document = tomlkit.document()
    document.add(tomlkit.comment("Created by `npc-host import-card`; see docs/profiles.md for rcon, log_path, lore."))
    document["name"] = server_dir.name
    document["game"] = "minecraft"
    (server_dir / SERVER_FILE).write_text(tomlkit.dumps(document), encoding="utf-8")
    return True


def _document(card: Card, profile: dict[str, Any]) -> tomlkit.TOMLDocument:
    document = tomlkit.document()
    document.add(tomlkit.comment(f"Imported from {card.source.name} ({card.spec}) by `npc-host import-card`."))
    data = card.data
    for label, value in (("Creator", data.creator), ("Tags", ", ".join(data.tags))):
        if value:
            document.add(tomlkit.comment(f"{label}: {value}"))
    notes = _text(data.creator_notes).splitlines()
    if notes:
        document.add(tomlkit.comment("Creator notes:"))
    for line in notes:
        document.add(tomlkit.comment(f"  {line}"))
    document.add(tomlkit.nl())
    document["id"] = profile["id"]
    document["name"] = profile["name"]
    document["persona"] = _table(profile["persona"])
    world = tomlkit.table()
    world["position"] = tomlkit.inline_table()
    world["position"].update(profile["world"]["position"])
    document["world"] = world
    if "lore" in profile:
        lore = tomlkit.aot()
        for entry in profile["lore"]:
            lore.append(_table(entry))
        document["lore"] = lore
    return document


def _table(values: dict[str, Any]) -> Table:
    table = tomlkit.table()
    for key, value in values.items():
        if isinstance(value, str) and "\n" in value:
            table[key] = tomlkit.string(value, multiline=True)
        elif isinstance(value, list) and value and isinstance(value[0], str):
            array = tomlkit.array()
            array.extend(value)
            table[key] = array.multiline(len(value) > 1 and sum(map(len, value)) > 80)
        else:
            table[key] = value
    return table
