"""The key-line scanner: problems must point at the right line even around multi-line strings and arrays."""

from __future__ import annotations

import tomllib

from host.profiles.key_lines import key_lines, line_of

DOCUMENT = '''\
# a comment with key = "value"
id = "bram"
[persona]
description = """Looks like a table header and a key:
[world]
position = 1
"""
goals = [
  "a = b",  # comment ]
  'c',
]
[world]
position = { x = 1, y = 64, z = 3 }
voice.speed = 1.2
"quoted key" = 3
[[lore]]
content = """ends with a quote""""
[[lore]]
keys = ["b"]
[lore.extra]
z = 1
[[lore]]
content = \'\'\'
literal \\ no escapes\'\'\'
enabled = true
'''


def test_every_key_maps_to_the_line_it_starts_on() -> None:
    tomllib.loads(DOCUMENT)  # the scanner only ever sees valid TOML
    lines = key_lines(DOCUMENT)
    assert lines[("id",)] == 2
    assert lines[("persona", "description")] == 4
    assert ("persona", "position") not in lines  # text inside the multi-line string is not a key
    assert lines[("persona", "goals")] == 8
    assert lines[("persona", "goals", 1)] == 10
    assert lines[("world",)] == 12
    assert lines[("world", "position", "z")] == 13
    assert lines[("world", "voice", "speed")] == 14
    assert lines[("world", "quoted key")] == 15
    assert lines[("lore", 0)] == 16
    assert lines[("lore", 1, "keys", 0)] == 19
    assert lines[("lore", 1, "extra", "z")] == 21
    assert lines[("lore", 2, "content")] == 23
    assert lines[("lore", 2, "enabled")] == 25


def test_an_absent_key_falls_back_to_its_table() -> None:
    lines = key_lines(DOCUMENT)
    assert line_of(lines, ("lore", 1, "content")) == 18
    assert line_of(lines, ("safety", "refuse_topics")) == 1
