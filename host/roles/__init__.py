"""The host's roles (gateway, speech, brain, advisor, admin): each consumes its streams through a consumer group,
so N processes of a role share its work. `npc-host run` starts them (host/roles/runner.py)."""
