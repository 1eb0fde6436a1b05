"""Test doubles for peers that cannot run on this machine.

Each one speaks the real peer's exact wire protocol over a real socket on 127.0.0.1 (never a mock object), so the code
under test runs its own client unchanged. One module per peer:

- `ollama_server.OllamaWireServer`: Ollama's HTTP API (`POST /api/chat` NDJSON streaming, `/api/tags`, `/api/version`)
  with scripted replies, delays and failure modes.
"""
