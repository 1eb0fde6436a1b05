"""Escaping that keeps one event on one line, whatever a player types.

Backslash, newline, carriage return and tab get short escapes (`\\\\`, `\\n`, `\\r`, `\\t`); other control characters,
Unicode line/paragraph separators, bidi overrides (they make a line read differently from what it holds) and lone
surrogates become `\\uXXXX`. Inside double quotes `"` becomes `\\"`. Everything else, including emoji and accents,
stays as typed so an admin can read the file.
"""

from __future__ import annotations

import re

_SHORT = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"'}
_UNSHORT = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t", '"': '"'}
_HIDDEN = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufeff"
_NEEDS_ESCAPE_QUOTED = re.compile(f'[\\\\"{_HIDDEN}]')
_NEEDS_ESCAPE_BARE = re.compile(f"[\\\\{_HIDDEN}]")
_ESCAPE_SEQUENCE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


class EscapeError(ValueError):
    pass


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT.get(char) or f"\\u{ord(char):04x}"


def quote(text: str) -> str:
    """`text` as a double-quoted string that holds no line break."""
    return '"' + _NEEDS_ESCAPE_QUOTED.sub(_escape_char, text) + '"'


def escape_bare(text: str) -> str:
    """`text` for the unquoted tail of a note line: quotes stay as typed, line breaks do not survive raw."""
    return _NEEDS_ESCAPE_BARE.sub(_escape_char, text)


def unquote(quoted: str) -> str:
    """Inverse of `quote`. Strict: machine-written, so an unknown escape is an error."""
    if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
        raise EscapeError("expected a double-quoted string")
    return _unescape(quoted[1:-1], strict=True)


def unescape_bare(text: str) -> str:
    """Inverse of `escape_bare`. Lenient: a hand-typed `\\x` that is no escape is kept as typed."""
    return _unescape(text, strict=False)


def _unescape(body: str, *, strict: bool) -> str:
    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5:
            return chr(int(code[1:], 16))
        if code in _UNSHORT:
            return _UNSHORT[code]
        if strict:
            raise EscapeError(f"unknown escape \\{code}")
        return match.group()

    if strict and re.search(r'(?<!\\)(?:\\\\)*"', body):
        raise EscapeError('unescaped " inside a quoted string')
    if strict and body.endswith("\\") and (len(body) - len(body.rstrip("\\"))) % 2 == 1:
        raise EscapeError("quoted string ends in a lone backslash")
    return _ESCAPE_SEQUENCE.sub(replace, body)
