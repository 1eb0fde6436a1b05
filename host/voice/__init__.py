"""The voice scene in one process: the voice turn (`pipeline`), its timings, and keeping persona prefixes warm."""
