"""Line numbers of the keys in a TOML file, so a problem can point at the line a user has to change.

tomllib keeps no positions and tomlkit exposes none, so this is a small scanner. It runs only on text tomllib has
already accepted, so it can assume valid TOML and only has to tell keys apart from the insides of strings, arrays and
inline tables. Locations use pydantic's shape: `("lore", 2, "keys")` is the `keys` of the third `[[lore]]` table.
"""

from __future__ import annotations

Loc = tuple[str | int, ...]

_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_END = frozenset(",]}\n#")


def key_lines(text: str) -> dict[Loc, int]:
    """Every table, key and array item of a valid TOML document, mapped to the line (1-based) where it starts."""
    scanner = _Scanner(text)
    scanner.scan()
    return scanner.lines


def line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of `loc`, or of its nearest enclosing table or key when it is absent (a missing required field)."""
    for end in range(len(loc), 0, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return 1


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Loc, int] = {}
        self.table: Loc = ()
        self.array_tables: dict[Loc, int] = {}  # path of each [[array]] -> how many tables it has so far

    def scan(self) -> None:
        while True:
            self._skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return
            if self.text[self.pos] == "[":
                self._header()
            else:
                self._key_value(self.table)

    def _advance(self, count: int) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + count)
        self.pos += count

    def _peek(self, literal: str) -> bool:
        return self.text.startswith(literal, self.pos)

    def _skip_blank(self, *, newlines: bool) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self._advance(1)
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self._advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    def _header(self) -> None:
        is_array = self._peek("[[")
        self._advance(2 if is_array else 1)
        path = self._with_array_indexes(self._dotted_key())
        self._skip_blank(newlines=False)
        self._advance(2 if is_array else 1)
        self.lines.setdefault(path, self.line)
        if is_array:
            index = self.array_tables.get(path, 0)
            self.array_tables[path] = index + 1
            path = (*path, index)
            self.lines[path] = self.line
        self.table = path

    def _with_array_indexes(self, path: Loc) -> Loc:
        """`[lore.extra]` after `[[lore]]` means the last lore table: insert the index of every array-table prefix."""
        resolved: Loc = ()
        for part in path:
            resolved = (*resolved, part)
            count = self.array_tables.get(resolved)
            if count and resolved != path:
                resolved = (*resolved, count - 1)
        return resolved

    def _key_value(self, base: Loc) -> None:
        line = self.line
        loc = base
        for part in self._dotted_key():
            loc = (*loc, part)
            self.lines.setdefault(loc, line)
        self._skip_blank(newlines=False)
        self._advance(1)  # the "="
        self._value(loc)

    def _dotted_key(self) -> Loc:
        parts: list[str | int] = []
        while True:
            self._skip_blank(newlines=False)
            if self._peek('"') or self._peek("'"):
                start = self.pos
                self._string()
                parts.append(self.text[start + 1 : self.pos - 1])
            else:
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos] in _BARE_KEY_CHARS:
                    self.pos += 1
                parts.append(self.text[start : self.pos])
            self._skip_blank(newlines=False)
            if not self._peek("."):
                return tuple(parts)
            self._advance(1)

    def _value(self, loc: Loc) -> None:
        self._skip_blank(newlines=False)
        char = self.text[self.pos] if self.pos < len(self.text) else ""
        if char in "\"'":
            self._string()
        elif char == "[":
            self._array(loc)
        elif char == "{":
            self._inline_table(loc)
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in _SCALAR_END:
                self.pos += 1

    def _array(self, loc: Loc) -> None:
        self._advance(1)
        index = 0
        while True:
            self._skip_blank(newlines=True)
            if self.pos >= len(self.text) or self._peek("]"):
                self._advance(1)
                return
            if self._peek(","):
                self._advance(1)
                index += 1
                continue
            self.lines.setdefault((*loc, index), self.line)
            self._value((*loc, index))

    def _inline_table(self, loc: Loc) -> None:
        self._advance(1)
        while True:
            self._skip_blank(newlines=True)
            if self.pos >= len(self.text) or self._peek("}"):
                self._advance(1)
                return
            if self._peek(","):
                self._advance(1)
                continue
            self._key_value(loc)

    def _string(self) -> None:
        quote = self.text[self.pos]
        if self._peek(quote * 3):
            end = self._closing(quote * 3, self.pos + 3, escapes=quote == '"')
            # A multi-line string may end with up to two quotes of content right before its delimiter.
            extra = 0
            while extra < 2 and self.text.startswith(quote, end + 3):
                end += 1
                extra += 1
            self._advance(end + 3 - self.pos)
        else:
            end = self._closing(quote, self.pos + 1, escapes=quote == '"')
            self._advance(end + 1 - self.pos)

    def _closing(self, delimiter: str, start: int, *, escapes: bool) -> int:
        index = start
        while index < len(self.text):
            if escapes and self.text[index] == "\\":
                index += 2
                continue
            if self.text.startswith(delimiter, index):
                return index
            index += 1
        return len(self.text)
