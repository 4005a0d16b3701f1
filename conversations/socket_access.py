"""Admitting an inbox websocket: tenant, credential, user, membership and the tenant's last event id in one
database statement (the consumer's one `database_sync_to_async` hop per handshake).

Channels runs every database call of a process on one shared thread, so a handshake that made a hop for the
tenant, one for the session, one for the token, one for the membership and one for the event log (five pool
checkouts, nine statements) queued every other socket of the process behind it. This module answers all of it
at once, with the same rules as before:

- the tenant: the Host's domain, never the public schema;
- a token (`Authorization: Token ...`, django-rest-knox): its digest, unexpired; its idle expiry moves on as
  knox does on every use (AUTO_REFRESH, at most every MIN_REFRESH_INTERVAL, capped by AUTO_REFRESH_MAX_TTL), written
  a moment later for every socket of the process at once (`renew_tokens`: a commit is a flush of the WAL, and
  200 of them in a row held the database thread for a second);
- else a session (the `sessionid` cookie): unexpired, its user id and backend as Django stored them, and the
  session hash equal to the user's (a password change ends it), as channels' `get_user` checks;
- the user active, and a member of the tenant.

Anything this statement does not decide by itself (a session of another backend, or without its user column)
goes through Django's own functions, in the same hop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django_tenants.postgresql_backend.base import is_valid_schema_name
from django_tenants.utils import get_public_schema_name
from knox.models import AuthToken
from knox.settings import knox_settings

from conversations.models import InboxEvent
from helpdesk.tenancy.access import membership_of
from helpdesk.tenancy.models import Domain, Membership, Tenant, User, UserSession
from helpdesk.tenancy.sessions import SessionStore

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a handshake presents (helpdesk.asgi_middleware.HandshakeMiddleware reads it from the headers, without
    the database): the Host's name, and a token's digest or else a session key."""

    hostname: str
    token_digest: str | None = None  # "Authorization: Token ..." was sent ("" if it cannot be a token)
    session_key: str | None = None

    @property
    def presents_credentials(self) -> bool:
        return bool(self.hostname) and (self.token_digest is not None or self.session_key is not None)

    @property
    def key(self) -> tuple[str, str]:
        return (
            self.hostname,
            self.token_digest if self.token_digest is not None else f"s:{self.session_key}",
        )


@dataclass(frozen=True, slots=True)
class Access:
    tenant_id: int
    schema_name: str
    user_id: int
    last_event_id: int | None  # read in the same statement when the caller named the right schema
    renew_token: bool = (
        False  # the token's idle expiry is due to move on (knox: more than MIN_REFRESH_INTERVAL)
    )
    role: str = ""  # the user's role in the tenant: some frames are for supervisors and admins only


# Table names come from the models (and the schema from the database), quoted; values are parameters.
STATEMENT = """
WITH site AS (
    SELECT t.id, t.schema_name FROM {domain} d JOIN {tenant} t ON t.id = d.tenant_id
    WHERE d.domain = %(host)s AND t.schema_name <> %(public)s
),
credential AS ({credential})
SELECT site.id, site.schema_name, credential.session_data, credential.renew_due, u.id, u.password, u.is_active,
    (SELECT m.role FROM {membership} m WHERE m.user_id = u.id AND m.tenant_id = site.id),
    {last_event}
FROM site CROSS JOIN credential LEFT JOIN {user} u ON u.id = credential.user_id
"""
BY_TOKEN = """SELECT user_id, NULL::text AS session_data, {renew_due} AS renew_due FROM {token}
    WHERE digest = %(credential)s AND (expiry IS NULL OR expiry > %(now)s)"""
BY_SESSION = """SELECT user_id, session_data, false AS renew_due FROM {session}
    WHERE session_key = %(credential)s AND expire_date > %(now)s"""
# knox's renew_token: the new expiry (capped by AUTO_REFRESH_MAX_TTL), written only when it moves the expiry on by
# more than MIN_REFRESH_INTERVAL. The handshake only says whether it is due (renew_tokens writes it).
RENEW_DUE = """(expiry IS NOT NULL
        AND LEAST(%(renewed)s, created + %(max_ttl)s::interval) - expiry > %(min_refresh)s::interval)"""
RENEW = """UPDATE {token} SET expiry = LEAST(%(renewed)s, created + %(max_ttl)s::interval)
WHERE digest = ANY(%(digests)s) AND expiry > %(now)s AND LEAST(%(renewed)s, created + %(max_ttl)s::interval) > expiry"""
SCHEMA_FOR_HOST = """SELECT t.schema_name FROM {domain} d JOIN {tenant} t ON t.id = d.tenant_id
WHERE d.domain = %(host)s AND t.schema_name <> %(public)s"""
LAST_EVENT = "(SELECT max(id) FROM {schema}.{inbox_event})"


@contextmanager
def _cursor() -> Iterator[Any]:
    """A cursor of Django's (execute wrappers, error translation) without django-tenants' `SET search_path` before
    it: a round trip less on the shared database thread, where every round trip also waits for the interpreter
    lock the event loop holds. The statements here name every table with its schema."""
    connection.ensure_connection()
    raw = connection.connection.cursor()
    cursor = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
    with cursor:
        yield cursor


def _quoted() -> dict[str, str]:
    names = {
        "domain": Domain,
        "tenant": Tenant,
        "user": User,
        "token": AuthToken,
        "session": UserSession,
        "membership": Membership,
    }
    public = connection.ops.quote_name(get_public_schema_name())
    return {
        key: f"{public}.{connection.ops.quote_name(model._meta.db_table)}" for key, model in names.items()
    }


@lru_cache(maxsize=64)
def _statement(by_token: bool, renews: bool, schema: str | None) -> str:
    quoted = _quoted()
    parts = {
        "credential": BY_TOKEN.format(renew_due=RENEW_DUE if renews else "false", **quoted)
        if by_token
        else BY_SESSION.format(**quoted),
        "last_event": LAST_EVENT.format(
            schema=connection.ops.quote_name(schema),
            inbox_event=connection.ops.quote_name(InboxEvent._meta.db_table),
        )
        if schema
        else "NULL::bigint",
    }
    return STATEMENT.format(**quoted, **parts)


def admit(handshake: Handshake, schema_hint: str | None = None) -> Access | None:
    """Whom a handshake admits to which tenant's inbox, or None (unknown host, no or bad credential, inactive
    user, not a member). One statement; with `schema_hint` naming the tenant's schema it also reads that
    schema's last inbox event id. Runs on the database thread, in any schema (every name is qualified)."""
    if not handshake.presents_credentials:
        return None
    by_token = handshake.token_digest is not None
    renews = bool(knox_settings.AUTO_REFRESH and knox_settings.TOKEN_TTL)
    hint = schema_hint if schema_hint and is_valid_schema_name(schema_hint) else None
    now = timezone.now()
    params: dict[str, Any] = {
        "host": handshake.hostname,
        "public": get_public_schema_name(),
        "credential": handshake.token_digest if by_token else handshake.session_key,
        "now": now,
    }
    if by_token and renews:
        params |= _renewal(now)
    with _cursor() as cursor:
        cursor.execute(_statement(by_token, renews, hint), params)
        row = cursor.fetchone()
    if row is None:
        return None
    (
        tenant_id,
        schema_name,
        session_data,
        renew_due,
        user_id,
        password,
        is_active,
        role,
        last_event_id,
    ) = row
    if not by_token:
        user_id, is_active, role = _session_user(session_data, user_id, password, is_active, role, tenant_id)
    if user_id is None or not is_active or not role:
        return None
    last = (last_event_id or 0) if schema_name == hint else None
    return Access(tenant_id, schema_name, user_id, last, bool(renew_due), str(role))


def last_event_id(schema_name: str) -> int:
    """The tenant's last inbox event id, in one statement (no `SET search_path`: the table is named with its
    schema)."""
    if not is_valid_schema_name(schema_name):
        raise ValueError(f"{schema_name!r} is not a schema name")
    sql = LAST_EVENT.format(
        schema=connection.ops.quote_name(schema_name),
        inbox_event=connection.ops.quote_name(InboxEvent._meta.db_table),
    )
    with _cursor() as cursor:
        cursor.execute(f"SELECT {sql}")
        return int(cursor.fetchone()[0] or 0)


def schema_for_host(hostname: str) -> str | None:
    """The schema of the tenant whose domain this is (never the public schema)."""
    sql = SCHEMA_FOR_HOST.format(**_quoted())
    with _cursor() as cursor:
        cursor.execute(sql, {"host": hostname, "public": get_public_schema_name()})
        row = cursor.fetchone()
    return None if row is None else str(row[0])


def _renewal(now: datetime) -> dict[str, Any]:
    return {
        "renewed": now + knox_settings.TOKEN_TTL,
        "max_ttl": knox_settings.AUTO_REFRESH_MAX_TTL,
        "min_refresh": _seconds(knox_settings.MIN_REFRESH_INTERVAL),
    }


def renew_tokens(digests: list[str]) -> int:
    """Moves the idle expiry of these (unexpired) tokens on, as knox does on a use: one statement for every
    socket that connected with a token due for it (the consumer gathers them for a moment)."""
    if not digests or not (knox_settings.AUTO_REFRESH and knox_settings.TOKEN_TTL):
        return 0
    now = timezone.now()
    with _cursor() as cursor:
        cursor.execute(RENEW.format(**_quoted()), {"digests": digests, "now": now, **_renewal(now)})
        return int(cursor.rowcount)


def _seconds(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


def _session_user(
    session_data: str | None,
    user_id: int | None,
    password: str | None,
    is_active: bool | None,
    role: str | None,
    tenant_id: int,
) -> tuple[int | None, bool, str | None]:
    """The session's user (channels.auth.get_user's rules), whether they may sign in (active) and their role in
    the tenant (None: not a member): from the row read when the session names the ModelBackend and its user
    column, else through Django's backend (same hop)."""
    refused: tuple[int | None, bool, str | None] = (None, False, None)
    if session_data is None:
        return refused
    data = SessionStore().decode(session_data)
    try:
        session_user_id = User._meta.pk.to_python(data[SESSION_KEY])  # type: ignore[union-attr]
        backend_path = data[BACKEND_SESSION_KEY]
    except (KeyError, ValueError, TypeError, ValidationError):
        return refused
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return refused
    user: Any
    if backend_path == MODEL_BACKEND and user_id is not None and session_user_id == user_id:
        user = User(pk=user_id, password=password or "", is_active=bool(is_active))
        if not ModelBackend().user_can_authenticate(user):
            return refused
    else:
        user = load_backend(backend_path).get_user(session_user_id)
        if user is None:
            return refused
        membership = membership_of(user, Tenant(pk=tenant_id))
        role = membership.role if membership is not None else None
    session_hash = data.get(HASH_SESSION_KEY)
    if not (session_hash and constant_time_compare(session_hash, user.get_session_auth_hash())):
        return refused
    return int(user.pk), bool(getattr(user, "is_active", True)), role
