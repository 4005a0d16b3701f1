"""Small helpers that read settings from the environment, with the zero-setup default when unset."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlsplit


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def database_from_url(url: str) -> dict[str, object]:
    """`postgres://user:pw@host:port/name` or `postgresql://user@/name?host=/socket/dir` -> DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL must be a postgres:// URL, got {parts.scheme!r}")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = query.pop("host", None) or unquote(parts.hostname or "")
    return {
        "ENGINE": "helpdesk.db",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or ""),
        "OPTIONS": query,
    }


def celery_broker_from_redis_url(url: str) -> str:
    """Celery spells a Unix-socket Redis `redis+socket://`; redis-py and channels-redis spell it `unix://`."""
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url


def channel_layer_prefix_from_redis_url(url: str) -> str:
    """Redis pub/sub channels ignore the database number: without a prefix of its own, every deployment (or
    test run) on the same Redis server would receive the others' inbox frames for tenants of the same name."""
    from redis.connection import parse_url

    return f"asgi.db{int(parse_url(url).get('db') or 0)}"
