"""Storage errors. Messages name the host, port and database, never the password."""

from __future__ import annotations

from host.errors import NpcHostError


class StoreError(NpcHostError):
    code = "store"


class DatabaseUnavailableError(StoreError):
    """The database cannot be reached or refused us; the message is one line a person can act on."""

    code = "database_unavailable"


class SchemaOutOfDateError(StoreError):
    code = "schema_out_of_date"


class ConflictError(StoreError):
    code = "conflict"


class NotFoundError(StoreError):
    code = "not_found"
