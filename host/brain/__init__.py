"""The persona brain: prompt layers, lore, sentence streaming, the out-of-character guard, LLM backends."""
