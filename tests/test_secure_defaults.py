"""Secure by default: the secret key, production switches (HTTPS=1), the health check and the API renderers.

Settings are read once per process, so what depends on the environment at start-up runs in a subprocess with
an environment of its own, exactly as a server or worker would start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
STRONG_KEY = "k3y-" + "Zq8rT1vX0bN5mL2pW7yH4cJ9dF6gS3aE" * 2


def clean_env(**extra: str) -> dict[str, str]:
    """A process environment with only the database and Redis of this test run, plus `extra`."""
    from django.conf import settings

    from tests.e2e.conftest import database_url

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def run(command: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout)


PRINT_KEY = [
    "-c",
    "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)",
]


# ------------------------------------------------------------------ SECRET_KEY


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "manage.py", "runserver", "127.0.0.1:0", "--noreload"],
        [sys.executable, "-m", "celery", "-A", "helpdesk", "worker", "-l", "warning"],
    ],
    ids=["server", "worker"],
)
def test_the_server_and_worker_refuse_to_start_without_secret_key_outside_debug(command, tmp_path):
    result = run(command, clean_env(HELPDESK_VAR_DIR=str(tmp_path)), timeout=60)

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "secret_key").exists()  # no key was made up behind the operator's back


def test_debug_mode_generates_a_key_once_under_var_and_keeps_it(tmp_path):
    env = clean_env(DEBUG="1", HELPDESK_VAR_DIR=str(tmp_path))

    first = run([sys.executable, *PRINT_KEY], env)
    second = run([sys.executable, *PRINT_KEY], env)

    assert first.returncode == 0, first.stderr
    key = (tmp_path / "secret_key").read_text().strip()
    assert len(key) >= 50
    assert first.stdout.strip() == second.stdout.strip() == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert "insecure" not in key


def test_a_set_secret_key_is_used_as_given(tmp_path):
    result = run(
        [sys.executable, *PRINT_KEY], clean_env(SECRET_KEY=STRONG_KEY, HELPDESK_VAR_DIR=str(tmp_path))
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == STRONG_KEY
    assert not (tmp_path / "secret_key").exists()


def test_the_launcher_gives_its_commands_the_generated_key(tmp_path):
    # `make test` / `make run` with nothing set: the launcher hands every command the same kept key
    env = clean_env(HELPDESK_VAR_DIR=str(tmp_path))
    command = [sys.executable, "-m", "helpdesk.services", "exec", "--", sys.executable, *PRINT_KEY]

    first, second = run(command, env), run(command, env)

    assert first.returncode == 0, first.stderr
    key = (tmp_path / "secret_key").read_text().strip()
    assert first.stdout.strip() == second.stdout.strip() == key
