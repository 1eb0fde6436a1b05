"""Test doubles for peers that cannot run on this machine.

Each one speaks the real peer's exact wire protocol over a real socket on 127.0.0.1 (never a mock object), so the code
under test runs its own client unchanged. One module per peer:

- `ollama_server.OllamaWireServer`: Ollama's HTTP API (`POST /api/chat` NDJSON streaming, `/api/tags`, `/api/version`)
  with scripted replies, delays and failure modes.
- `rcon_server.RconTestServer`: vanilla Minecraft's RCON (single 1460-byte read, 4096-character reply fragments,
  "Unknown request", id -1 on a bad password, one command at a time), with `restart()`; `MinecraftWorld` answers
  `list`, `data get entity`, `summon` and `kill` like a server.
"""
