"""The text chunks (tEXt, zTXt, iTXt) of a PNG file, where character cards keep their JSON.

Lengths declared by the file are checked against what is actually there, and compressed text is inflated under one
cap for the whole file (many small compressed chunks add up), so a hostile file cannot make us allocate more than it is
worth.
"""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_BYTES = 32 * 1024 * 1024
_CHUNK_HEADER = struct.Struct(">I4s")


class PngTextError(ValueError):
    pass


def png_text_chunks(blob: bytes, max_inflated_bytes: int = MAX_TEXT_BYTES) -> dict[str, str]:
    """Keyword -> text of every text chunk; when a keyword repeats, the last chunk wins."""
    if not blob.startswith(PNG_SIGNATURE):
        raise PngTextError("not a PNG file")
    texts: dict[str, str] = {}
    inflater = _Inflater(max_inflated_bytes)
    pos = len(PNG_SIGNATURE)
    while pos + _CHUNK_HEADER.size <= len(blob):
        length, kind = _CHUNK_HEADER.unpack_from(blob, pos)
        body_start = pos + _CHUNK_HEADER.size
        body_end = body_start + length
        if body_end + 4 > len(blob):  # 4 bytes of CRC follow the body
            raise PngTextError(f"truncated {kind.decode('latin-1')!r} chunk at byte {pos}")
        body = blob[body_start:body_end]
        if kind == b"IEND":
            return texts
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            keyword, text = _text_chunk(kind, body, inflater)
            texts[keyword] = text
        pos = body_end + 4
    raise PngTextError("truncated PNG: it ends before its IEND chunk")


def _text_chunk(kind: bytes, body: bytes, inflater: _Inflater) -> tuple[str, str]:
    keyword, separator, rest = body.partition(b"\0")
    if not separator:
        raise PngTextError(f"{kind.decode()} chunk without a keyword")
    name = keyword.decode("latin-1")
    if kind == b"tEXt":
        return name, rest.decode("latin-1")
    if kind == b"zTXt":
        return name, inflater.inflate(rest[1:]).decode("latin-1")
    # iTXt: compression flag, method, language tag \0, translated keyword \0, UTF-8 text.
    if len(rest) < 2:
        raise PngTextError("iTXt chunk too short")
    compressed, after_flags = rest[0], rest[2:]
    _language, _, after_language = after_flags.partition(b"\0")
    _translated, _, text = after_language.partition(b"\0")
    raw = inflater.inflate(text) if compressed else text
    try:
        return name, raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PngTextError(f"iTXt chunk {name!r} is not UTF-8") from exc


class _Inflater:
    """Inflates every compressed chunk of one file out of a single budget."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._left = max_bytes

    def inflate(self, data: bytes) -> bytes:
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, self._left + 1)
        except zlib.error as exc:
            raise PngTextError(f"compressed text chunk is corrupt: {exc}") from exc
        if len(out) > self._left:
            raise PngTextError(f"compressed text chunks inflate to more than {self._max_bytes} bytes")
        self._left -= len(out)
        return out
