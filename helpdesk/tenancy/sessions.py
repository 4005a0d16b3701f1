"""SESSION_ENGINE: Django's database sessions, each row with its user's id (Django's documented way of
extending the database session engine), so that a password change, a deactivation or "sign out everywhere"
deletes every session of a user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DBStore


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls) -> Any:
        from helpdesk.tenancy.models import UserSession

        return UserSession

    def create_model_instance(self, data: dict[str, Any]) -> Any:
        session: Any = super().create_model_instance(data)
        try:
            session.user_id = int(data.get(SESSION_KEY))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            session.user_id = None
        return session
