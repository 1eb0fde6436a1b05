"""Minecraft (Java Edition) integration: RCON commands, NPC bodies, chat capture from the server log, positions."""
