"""npc-host: AI role-play characters that listen and talk, for game servers."""

import os

# onnxruntime (Piper, Silero VAD) phones home unless this is set before it is imported.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
