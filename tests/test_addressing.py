"""Who hears a line and who answers it, over the cases a player runs into in a village."""

from __future__ import annotations

import pytest

from host.brain.addressing import Addressing, address, is_named
from host.events import PlayerSaid, Position
from host.profiles.schema import NpcProfile, PersonaSpec, Vec3, WorldSpec

NETHER = "minecraft:the_nether"


def npc(
    npc_id: str, name: str, x: float, *, aliases: tuple[str, ...] = (), hearing: float = 8.0, dim: str = ""
) -> NpcProfile:
    return NpcProfile(
        id=npc_id,
        name=name,
        aliases=list(aliases),
        persona=PersonaSpec(description="someone in the village"),
        world=WorldSpec(
            position=Vec3(x=x, y=64.0, z=0.0), hearing_range=hearing, dimension=dim or "minecraft:overworld"
        ),
    )


VILLAGE = [
    npc("bram", "Bram", 0.0, aliases=("innkeeper", "Old Bram")),
    npc("elda", "Elda", 6.0, aliases=("guard",)),
    npc("birch", "Old Birch", 12.0, aliases=("the tree",), hearing=20.0),
    npc("imp", "Imp", 1.0, dim=NETHER),
]


def said(text: str, x: float | None, *, dim: str = "minecraft:overworld") -> PlayerSaid:
    position = None if x is None else Position(x=x, y=64.0, z=0.0, dimension=dim)
    return PlayerSaid(server="village", player="Alice", text=text, position=position)


@pytest.mark.parametrize(
    ("text", "x", "last_partner", "hearers", "responders"),
    [
        # named by name, whole word, any case
        ("Elda, any news?", 2.0, "bram", ("bram", "elda", "birch"), ("elda",)),
        ("hey ELDA!", 2.0, None, ("bram", "elda", "birch"), ("elda",)),
        # named by alias, including a multi-word one with odd spacing
        ("Guard, open the gate", 2.0, None, ("bram", "elda", "birch"), ("elda",)),
        ("is THE   TREE awake?", 2.0, None, ("bram", "elda", "birch"), ("birch",)),
        # a name inside another word is not a name
        ("Eldaberry pie please", 2.0, None, ("bram", "elda", "birch"), ("bram",)),
        # several named: a group scene, nearest first
        ("Old Birch and Bram, settle this", 7.0, None, ("elda", "birch", "bram"), ("birch", "bram")),
        # nobody named: the last partner if still in range
        ("and then?", 5.0, "bram", ("elda", "bram", "birch"), ("bram",)),
        # last partner out of range: the nearest hearer
        ("and then?", 10.0, "bram", ("birch", "elda"), ("birch",)),
        # last partner is not an NPC of this server: the nearest hearer
        ("hello", 2.0, "ghost", ("bram", "elda", "birch"), ("bram",)),
        # named, but out of earshot: nobody answers in their place
        ("Bram, are you there?", 18.0, None, ("birch",), ()),
        # nobody in range
        ("hello?", 100.0, "bram", (), ()),
    ],
)
def test_who_hears_and_who_answers(
    text: str, x: float, last_partner: str | None, hearers: tuple[str, ...], responders: tuple[str, ...]
) -> None:
    assert address(said(text, x), VILLAGE, last_partner) == Addressing(hearers, responders)


def test_another_dimension_never_hears() -> None:
    assert address(said("Imp, hello", 1.0), VILLAGE) == Addressing(("bram", "elda", "birch"), ())
    assert address(said("Bram, hello", 0.0, dim=NETHER), VILLAGE) == Addressing(("imp",), ())
    assert address(said("hello", 0.0, dim=NETHER), VILLAGE) == Addressing(("imp",), ("imp",))


@pytest.mark.parametrize(
    ("text", "last_partner", "expected"),
    [
        ("Elda, come here", "bram", ("elda",)),
        ("any rooms?", "bram", ("bram",)),
        ("any rooms?", None, ()),
        ("any rooms?", "ghost", ()),
    ],
)
def test_terminal_chat_without_position(text: str, last_partner: str | None, expected: tuple[str, ...]) -> None:
    assert address(said(text, None), VILLAGE, last_partner) == Addressing(expected, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("old bram!", True), ("Bram's ale", True), ("Brambles", False), ("abram", False), ("innkeeper?", True)],
)
def test_name_matching_is_whole_word(text: str, expected: bool) -> None:
    assert is_named(text, VILLAGE[0]) is expected
