"""What the persona prompt tells the model about the actions its profile allows (host/npc_actions.py), kept apart
from the prompt layout so prompt.py only places it. Empty when the NPC may do nothing but talk."""

from __future__ import annotations

from host.profiles.schema import NpcProfile

_HOW = {
    "follow": "[follow] to follow the person you talk to",
    "stop": "[stop] to stop following or walking",
    "look": "[look] to turn to them",
}


def action_rules(profile: NpcProfile) -> list[str]:
    spec = profile.actions
    tags = [_HOW[verb] for verb in spec.allowed if verb in _HOW]
    if "walk" in spec.allowed and spec.waypoints:
        tags.append(f"[walk <place>] to walk to one of: {', '.join(sorted(spec.waypoints))}")
    if "give" in spec.allowed and spec.stock:
        tags.append(f"[give <item>] to hand over one of: {', '.join(sorted(spec.stock))}")
    if not tags:
        return []
    return [f"You can act by adding a tag to your words: {'; '.join(tags)}. Only act when it fits; tags are silent."]
