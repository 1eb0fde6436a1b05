"""Dead-letter entries: the original entry's fields, untouched, plus `dead:*` fields saying where it came from and why.

`dead:*` names cannot clash with event fields (those are Python identifiers) and are written last, so they win over
anything a malformed entry carried.
"""

from __future__ import annotations

from collections.abc import Mapping

from host.bus.codec import Fields, encode
from host.bus.delivery import Rejection
from host.bus.reports import DeadLetter

_META = b"dead:"


def dead_letter_fields(rejection: Rejection, stream: str, group: str, consumer: str) -> Fields:
    delivery = rejection.delivery
    original: Mapping[bytes, bytes] = delivery.fields or (encode(delivery.event) if delivery.event else {})
    return {
        **original,
        _META + b"stream": stream.encode(),
        _META + b"entry": delivery.entry_id.encode(),
        _META + b"group": group.encode(),
        _META + b"consumer": consumer.encode(),
        _META + b"code": rejection.code.encode(),
        _META + b"reason": rejection.reason.encode(),
        _META + b"deliveries": str(delivery.attempts).encode(),
    }


def parse_dead_letter(entry_id: str, dead_stream: str, fields: Mapping[bytes, bytes]) -> DeadLetter:
    def meta(name: str) -> str:
        return fields.get(_META + name.encode(), b"").decode(errors="replace")

    return DeadLetter(
        entry_id=entry_id,
        stream=meta("stream") or dead_stream,
        original_id=meta("entry"),
        group=meta("group"),
        consumer=meta("consumer"),
        code=meta("code"),
        reason=meta("reason"),
        deliveries=int(meta("deliveries") or 0),
        fields={name.decode(errors="replace"): value for name, value in fields.items() if not name.startswith(_META)},
    )
