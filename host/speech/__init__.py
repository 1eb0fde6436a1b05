"""Speech: audio basics, streaming voice activity detection, speech-to-text and text-to-speech.

Submodules are imported directly (`host.speech.vad`, `host.speech.stt`, ...) so that importing one never loads
the models of another.
"""
