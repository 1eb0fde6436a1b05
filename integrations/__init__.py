"""Game integrations (Minecraft first), each a `GameAdapter` under the `npc_host.integrations` entry point."""
