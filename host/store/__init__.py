"""Storage: SQLAlchemy 2 async on SQLite (default) or PostgreSQL, with Alembic migrations. See docs/storage.md.

store = await Store.open(settings.effective_database_url)
created = await store.conversations.record_turn(TurnRecord(...))
await store.close()
"""

from __future__ import annotations

from host.store.admin_sessions import AdminSessionRepo, OpenSession
from host.store.admin_users import AdminUserRepo
from host.store.advisor_runs import AdvisorRunRepo
from host.store.bridge_tokens import BridgeTokenRepo, StoredToken, TokenStatus
from host.store.conversations import ConversationRepo
from host.store.db import Database
from host.store.errors import (
    ConflictError,
    DatabaseUnavailableError,
    NotFoundError,
    SchemaOutOfDateError,
    StoreError,
)
from host.store.migrate import ensure_schema, prepare_schema
from host.store.records import (
    ActiveAdvice,
    AdminUser,
    AdviceItem,
    AdvisorCursor,
    AdvisorPassRecord,
    ConversationKey,
    Correction,
    Exchange,
    NewAdminUser,
    NewCorrection,
    NewNote,
    NewRecommendation,
    Note,
    PassUsage,
    Recommendation,
    RecommendationStatus,
    TurnRecord,
)
from host.store.steering import SteeringRepo


class Store:
    """The repositories over one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.conversations = ConversationRepo(db)
        self.steering = SteeringRepo(db)
        self.admin_users = AdminUserRepo(db)
        self.admin_sessions = AdminSessionRepo(db)
        self.bridge_tokens = BridgeTokenRepo(db)
        self.advisor = AdvisorRunRepo(db)

    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect (failing fast on a wrong URL) and prepare the schema: SQLite is migrated, PostgreSQL checked."""
        db = await Database.open(url)
        try:
            await prepare_schema(db)
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        await self.db.close()


__all__ = [
    "ActiveAdvice",
    "AdminUser",
    "AdviceItem",
    "AdvisorCursor",
    "AdvisorPassRecord",
    "ConflictError",
    "ConversationKey",
    "Correction",
    "Database",
    "DatabaseUnavailableError",
    "Exchange",
    "NewAdminUser",
    "NewCorrection",
    "NewNote",
    "NewRecommendation",
    "NotFoundError",
    "Note",
    "OpenSession",
    "PassUsage",
    "Recommendation",
    "RecommendationStatus",
    "SchemaOutOfDateError",
    "Store",
    "StoreError",
    "StoredToken",
    "TokenStatus",
    "TurnRecord",
    "ensure_schema",
]
