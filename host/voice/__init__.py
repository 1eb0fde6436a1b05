"""Voice on the path a player meets: the scene the demo and bench play through the bridge, its timings, who is in
earshot, and keeping persona prefixes warm."""
