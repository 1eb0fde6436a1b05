"""Events <-> Redis stream fields.

Fields: `type`, `v` (schema version), `id`, `json` (the event without its binary fields) and one raw-bytes field per
binary field (audio is never base64). `decode` validates once, here at the edge, and raises an
`EventValidationError` whose message becomes the dead-letter reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from host.errors import EventValidationError

if TYPE_CHECKING:
    from host.events import Event

Fields = dict[bytes, bytes]


class MalformedEventError(EventValidationError):
    code = "event_malformed"


def encode(event: Event) -> Fields:
    fields: Fields = {
        b"type": event.type.encode(),
        b"v": str(event.version).encode(),
        b"id": event.id.encode(),
        b"json": event.model_dump_json(exclude=set(event.BINARY_FIELDS)).encode(),
    }
    for name in event.BINARY_FIELDS:
        fields[name.encode()] = getattr(event, name)
    return fields


def decode(fields: Mapping[bytes, bytes]) -> Event:
    from host.events import event_class  # the event models are built on the first entry read, not on import

    type_name = _text(fields, b"type")
    raw_version = _text(fields, b"v")
    try:
        version = int(raw_version)
    except ValueError:
        raise MalformedEventError(f"event {type_name!r}: version {raw_version!r} is not an integer") from None
    cls = event_class(type_name, version)
    try:
        if cls.BINARY_FIELDS:
            data = _json_object(type_name, fields)
            for name in cls.BINARY_FIELDS:
                if name.encode() in fields:
                    data[name] = fields[name.encode()]
            event = cls.model_validate(data)
        else:
            event = cls.model_validate_json(_raw(fields, b"json"))
    except ValidationError as exc:
        raise MalformedEventError(f"event {type_name!r}: {_first_error(exc)}") from None
    if event.version != version or event.id != _text(fields, b"id"):
        raise MalformedEventError(f"event {type_name!r}: `v`/`id` fields disagree with its json")
    return event


def _raw(fields: Mapping[bytes, bytes], name: bytes) -> bytes:
    value = fields.get(name)
    if value is None:
        raise MalformedEventError(f"entry has no {name.decode()!r} field (fields: {_names(fields)})")
    return value


def _text(fields: Mapping[bytes, bytes], name: bytes) -> str:
    try:
        return _raw(fields, name).decode()
    except UnicodeDecodeError:
        raise MalformedEventError(f"field {name.decode()!r} is not UTF-8") from None


def _json_object(type_name: str, fields: Mapping[bytes, bytes]) -> dict[str, Any]:
    try:
        data = json.loads(_raw(fields, b"json"))
    except ValueError as exc:
        raise MalformedEventError(f"event {type_name!r}: json field is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MalformedEventError(f"event {type_name!r}: json field is not an object")
    return data


def _first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "json"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _names(fields: Mapping[bytes, bytes]) -> str:
    return ", ".join(sorted(name.decode(errors="replace") for name in fields)) or "none"
