"""Test doubles for peers that cannot run on this machine.

Each one speaks the real peer's exact wire protocol over a real socket on 127.0.0.1 (never a mock object), so the code
under test runs its own client unchanged. One module per peer:

- `ollama_server.OllamaWireServer`: Ollama's HTTP API (`POST /api/chat` NDJSON streaming, `/api/tags`, `/api/version`)
  with scripted replies, delays and failure modes.
- `openai_server.OpenAIWireServer`: an OpenAI-compatible `POST /v1/chat/completions` SSE stream with the same
  scripting, plus malformed events, streams that never finish and an API-key check that echoes the key it got.
- `http_server.ScriptedHttpServer`: the HTTP/1.1 plumbing (h11) both are built on, for the next double.
- `rcon_server.RconTestServer`: vanilla Minecraft's RCON (single 1460-byte read, 4096-character reply fragments,
  "Unknown request", id -1 on a bad password, one command at a time), with `restart()`; `MinecraftWorld` answers
  `list`, `data get entity`, `summon` and `kill` like a server.
"""
