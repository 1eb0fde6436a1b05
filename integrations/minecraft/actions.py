"""NPC actions in the game: each request checked against the NPC's profile, built from checked data, performed, and
answered with an `NpcActed` verdict for the transcript.

    follow   walk after a player, keeping `follow_distance`, until [stop], `max_follow_s`, or the player leaves
    walk     walk to a waypoint of the profile
    look     turn to a player
    give     `give <player> <item> <n>` from the NPC's stock, within the ledger's limits
    stop     end a follow or walk

Walking is smooth: a short `tp ... facing` step every `STEP_S` (speed from the profile), never one jump across the
map; the Y coordinate is interpolated, since RCON cannot see the ground. One movement per NPC at a time: a new one,
`stop`, `!npc tp` or the adapter stopping ends the old one. An NPC asks through its reply's tags, and may only do what
its profile's `[actions] allowed` lists; an operator (`!npc act`) may start any action, within the same limits.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Literal

from host.errors import NpcHostError
from host.events import NpcActed, Position
from host.npc_actions import ActionRequest, ActionSyntaxError, parse_action
from host.profiles.schema import NpcProfile
from integrations.minecraft import commands
from integrations.minecraft.bodies import PLAYER_EYE_HEIGHT
from integrations.minecraft.give_ledger import ActionRefusedError, GiveLedger
from integrations.minecraft.rcon import RconClient, RconError
from integrations.minecraft.replies import CommandRejectedError, run_checked

log = logging.getLogger(__name__)

STEP_S = 0.2  # one tp per NPC per step: 5 commands a second while it moves
EYE = PLAYER_EYE_HEIGHT

Requester = Literal["npc", "operator"]


class ActionPerformer:
    def __init__(
        self,
        server: str,
        rcon: RconClient,
        profiles: dict[str, NpcProfile],
        bodies: frozenset[str],
        *,
        where: Callable[[str], Position],
        place: Callable[[str, Position], None],
        player_at: Callable[[str], Position | None],
        locate: Callable[[str], Awaitable[Position | None]],
        ledger: GiveLedger,
        step_s: float = STEP_S,
    ) -> None:
        self.server = server
        self.rcon = rcon
        self.profiles = profiles
        self.bodies = bodies
        self.where = where
        self.place = place
        self.player_at = player_at  # the last polled position (each step of a follow)
        self.locate = locate  # a position fresh enough to decide on (read again when stale)
        self.ledger = ledger
        self.step_s = step_s
        self._moving: dict[str, asyncio.Task[None]] = {}

    async def request(
        self, npc_id: str, player: str, text: str, *, by: Requester, turn_id: str | None = None
    ) -> NpcActed:
        """Check and perform one action; the verdict says performed, refused (with a reason) or failed."""

        def verdict(action: str, outcome: Literal["performed", "refused", "failed"], reason: str | None) -> NpcActed:
            return NpcActed(
                server=self.server,
                npc=npc_id,
                player=player,
                action=action[:64],
                outcome=outcome,
                reason=reason,
                requested_by=by,
                turn_id=turn_id,
            )

        try:
            action = parse_action(text)
        except ActionSyntaxError as exc:
            return verdict(commands.clean_text(text, 64), "refused", exc.code)
        try:
            await self._perform(self.profiles[npc_id], player, action, by)
        except ActionRefusedError as exc:
            log.info("%s: %s refused (%s)", npc_id, action.verb, exc.reason)
            return verdict(action.describe(), "refused", exc.reason)
        except CommandRejectedError as exc:  # logged by kind where the reply was read
            return verdict(action.describe(), "failed", exc.reason)
        except RconError as exc:
            log.warning("%s: %s failed: %s", npc_id, action.verb, exc.message)
            return verdict(action.describe(), "failed", exc.code)
        return verdict(action.describe(), "performed", None)

    def stop(self, npc_id: str) -> bool:
        """End the NPC's follow or walk; True if it was moving."""
        task = self._moving.pop(npc_id, None)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def close(self) -> None:
        tasks = list(self._moving.values())
        self._moving.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _perform(self, npc: NpcProfile, player: str, action: ActionRequest, by: Requester) -> None:
        spec = npc.actions
        if by == "npc" and action.verb not in spec.allowed:
            raise ActionRefusedError("not_allowed", f"{npc.id} may not {action.verb}")
        if action.verb == "stop":
            self.stop(npc.id)
            return
        if action.verb == "give":
            await self._give(npc, self._player(None, player), action)  # to the player answered, or the operator
            return
        if npc.id not in self.bodies:
            raise ActionRefusedError("no_body", f"{npc.id} has no body in the game")
        if action.verb == "walk":
            target = spec.waypoints.get(action.target or "")
            if target is None:
                raise ActionRefusedError("unknown_place", f"{npc.id} knows no place {action.target!r}")
            here = self.where(npc.id)
            goal = Position(x=target.x, y=target.y, z=target.z, dimension=here.dimension)
            self._check_reach(npc, here, goal)
            self._start_moving(npc, lambda: goal, stop_at=0.0, follow=False)
            return
        name = self._player(action.target, player)
        at = await self.locate(name)
        if at is None:
            raise ActionRefusedError("player_unknown", f"where {name} stands is not known")
        self._check_reach(npc, self.where(npc.id), at)
        if action.verb == "look":
            await run_checked(self.rcon.command, "face", commands.face(npc.id, at.x, at.y + EYE, at.z))
        else:  # follow
            self._start_moving(npc, lambda: self.player_at(name), stop_at=spec.follow_distance, follow=True)

    def _player(self, target: str | None, player: str) -> str:
        name = player if target is None else target
        if not commands.PLAYER_NAME.fullmatch(name):
            raise ActionRefusedError("bad_player", "not a player name")
        return name

    def _check_reach(self, npc: NpcProfile, here: Position, there: Position) -> None:
        if here.dimension != there.dimension:
            raise ActionRefusedError("other_dimension", f"{npc.id} cannot walk to another dimension")
        if _distance(here, there) > npc.actions.max_walk_blocks:
            raise ActionRefusedError("too_far", f"{npc.id} does not walk that far")

    async def _give(self, npc: NpcProfile, player: str, action: ActionRequest) -> None:
        name = action.target or ""
        item = npc.actions.stock.get(name)
        if item is None:
            raise ActionRefusedError("not_in_stock", f"{npc.id} has no {name!r} to give")
        at = await self.locate(player)
        if at is None or _distance(self.where(npc.id), at) > npc.actions.give_range:
            raise ActionRefusedError("out_of_reach", f"{player} is not within reach of {npc.id}")
        command = commands.give(player, item.item, action.count)
        self.ledger.take(npc.id, name, item, player, action.count)
        try:
            await run_checked(self.rcon.command, "give", command)
        except RconError:
            self.ledger.give_back(npc.id, name, player, action.count)
            raise
        finally:
            await self.ledger.save()

    def _start_moving(
        self, npc: NpcProfile, goal: Callable[[], Position | None], *, stop_at: float, follow: bool
    ) -> None:
        self.stop(npc.id)
        deadline = asyncio.get_running_loop().time() + npc.actions.max_follow_s
        task = asyncio.create_task(self._move(npc, goal, stop_at, follow, deadline), name=f"move:{npc.id}")
        self._moving[npc.id] = task
        task.add_done_callback(lambda done: self._forget(npc.id, done))

    def _forget(self, npc_id: str, task: asyncio.Task[None]) -> None:
        if self._moving.get(npc_id) is task:
            del self._moving[npc_id]

    async def _move(
        self, npc: NpcProfile, goal: Callable[[], Position | None], stop_at: float, follow: bool, deadline: float
    ) -> None:
        loop = asyncio.get_running_loop()
        step_blocks = npc.actions.speed * self.step_s
        try:
            while loop.time() < deadline:
                target, here = goal(), self.where(npc.id)
                if target is None or target.dimension != here.dimension:
                    return  # the player left, or went through a portal
                distance = _distance(here, target)
                if distance > npc.actions.max_walk_blocks:
                    return  # teleported away: not a walk any more
                if distance > stop_at + 0.05:
                    share = min(step_blocks, distance - stop_at) / distance
                    step = Position(
                        x=here.x + (target.x - here.x) * share,
                        y=here.y + (target.y - here.y) * share,
                        z=here.z + (target.z - here.z) * share,
                        dimension=here.dimension,
                    )
                    look = Position(x=target.x, y=target.y + (EYE if follow else 0.0), z=target.z)
                    await run_checked(self.rcon.command, "tp", commands.step_body(npc.id, step, look))
                    self.place(npc.id, step)
                elif not follow:
                    return
                await asyncio.sleep(self.step_s)
        except NpcHostError as exc:  # RCON down or a rejected step: the walk ends where the body stands
            log.debug("%s stopped walking: %s", npc.id, exc)


def _distance(a: Position, b: Position) -> float:
    return math.dist((a.x, a.y, a.z), (b.x, b.y, b.z))
