"""Persona profiles: `npc_profiles/<server>/server.toml` and one `<npc>.toml` per character."""
