"""Character tests: scenes played against an NPC and scored by rules (`npc-host eval`, docs/eval.md)."""
