"""Per-player state expires with the player: the speech role's barge-ins and the brain's last partner used to grow
by one entry per player ever seen, for as long as the host ran."""

from __future__ import annotations

from host.player_state import PlayerMemory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_player_quiet_for_the_idle_time_is_forgotten() -> None:
    clock = Clock()
    memory: PlayerMemory[tuple[str, str], str] = PlayerMemory(idle_s=600, clock=clock)
    memory[("village", "Alex")] = "bram"
    clock.now += 599
    assert memory.get(("village", "Alex")) == "bram" and ("village", "Alex") in memory
    memory[("village", "Sam")] = "elda"
    clock.now += 2
    assert memory.get(("village", "Alex")) is None and ("village", "Alex") not in memory
    assert memory.get(("village", "Sam")) == "elda"
    assert len(memory) == 1  # Alex's entry is gone, not just hidden


def test_thousands_of_passing_players_leave_at_most_the_cap() -> None:
    clock = Clock()
    memory: PlayerMemory[str, float] = PlayerMemory(idle_s=600, max_players=100, clock=clock)
    for n in range(5000):
        memory[f"player{n}"] = float(n)
        clock.now += 0.01
    assert len(memory) == 100
    assert memory.get("player4999") == 4999.0 and memory.get("player0") is None


def test_speaking_again_keeps_a_player_remembered() -> None:
    clock = Clock()
    memory: PlayerMemory[str, float] = PlayerMemory(idle_s=600, clock=clock)
    for _ in range(10):
        memory["Alex"] = clock.now
        clock.now += 500
    assert memory.get("Alex") == clock.now - 500
