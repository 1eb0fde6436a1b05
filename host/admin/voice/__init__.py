"""The players' voice page (`voice_router`) and the table's game-master API (`table_router`), for the admin app."""
