"""Imports every tenant model so that TenantBase.metadata is complete (Alembic's target)."""

from service.db import TenantBase
from service.songs import Song
from service.todos import Todo
from service.users import User

__all__ = ["Song", "TenantBase", "Todo", "User"]
