"""Positions, hearing ranges, per-listener gain and pan, and the voice-mod bridge protocol."""
