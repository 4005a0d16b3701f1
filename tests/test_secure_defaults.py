"""Secure by default: the secret key, production switches (HTTPS=1), the health check and the API renderers.

Settings are read once per process, so what depends on the environment at start-up runs in a subprocess with
an environment of its own, exactly as a server or worker would start.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.conftest import ACME, issue_token, public_client, tenant_client

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


# ------------------------------------------------------------------ production switches


def test_check_deploy_is_clean_with_https_a_real_key_and_debug_off(tmp_path):
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        clean_env(HTTPS="1", SECRET_KEY=STRONG_KEY, HELPDESK_VAR_DIR=str(tmp_path)),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


HTTPS_REQUESTS = """
import json, django
django.setup()
from django.test import Client
out = {}
plain = Client(HTTP_HOST="acme.localhost")
r = plain.get("/login/")
out["http_login"] = [r.status_code, r.get("Location")]
r = Client(HTTP_HOST="localhost").get("/healthz")
out["http_healthz"] = r.status_code
browser = Client(HTTP_HOST="acme.localhost")
r = browser.get("/login/", secure=True)
out["hsts"] = r.get("Strict-Transport-Security")
out["csp"] = r.get("Content-Security-Policy")
out["csrf_cookie_secure"] = bool(r.cookies["csrftoken"]["secure"])
r = browser.post("/login/", {"username": "sam@acme.test", "password": PASSWORD}, secure=True)
out["login"] = r.status_code
out["session_cookie"] = [bool(r.cookies["sessionid"]["secure"]), bool(r.cookies["sessionid"]["httponly"])]
print(json.dumps(out))
"""


def test_https_switch_secures_cookies_sends_hsts_and_redirects_plain_http(committed_db):
    from tests.conftest import PASSWORD

    script = HTTPS_REQUESTS.replace("PASSWORD", repr(PASSWORD))

    result = run([sys.executable, "-c", script], clean_env(HTTPS="1", SECRET_KEY=os.environ["SECRET_KEY"]))

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["http_login"] == [301, "https://acme.localhost/login/"]
    assert out["http_healthz"] == 200  # monitors probe over plain HTTP
    assert out["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert "upgrade-insecure-requests" in out["csp"]
    assert out["csrf_cookie_secure"] is True
    assert out["login"] == 302
    assert out["session_cookie"] == [True, True]


def test_without_https_the_development_server_keeps_plain_http(db):
    response = Client(HTTP_HOST="acme.localhost").get("/login/")

    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response
    assert not response.cookies["csrftoken"]["secure"]


def directives(response: Any) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def test_every_page_has_a_content_security_policy_without_inline_script(db, ada):
    client = Client(HTTP_HOST="acme.localhost")
    login = client.get("/login/")
    client.force_login(ada)
    pages = [login, *(client.get(path) for path in ("/inbox/", "/reports/", "/settings/"))]

    for page in pages:
        assert page.status_code == 200
        policy = directives(page)
        assert policy["script-src"] == ["'self'"]
        assert policy["style-src"] == ["'self'"]
        assert policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        html = page.content.decode()
        # no inline script (data in <script type="application/json"> is not run) or event handler, no style
        # attribute: the policy would block them
        assert re.findall(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", html) == []
        assert re.findall(r"<[^>]+\son[a-z]+\s*=", html) == []
        assert re.findall(r"<[^>]+\sstyle\s*=", html) == []
        assert re.findall(r"<style\b", html) == []


def test_the_api_docs_load_their_script_from_a_file(db):
    page = Client(HTTP_HOST="acme.localhost").get("/api/docs/")

    assert page.status_code == 200
    assert directives(page)["script-src"] == ["'self'"]
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page.content.decode()) == []
    script = Client(HTTP_HOST="acme.localhost").get("/api/docs/?script=")
    assert (script.status_code, script["Content-Type"]) == (200, "application/javascript")


def test_the_browsable_api_is_off_outside_debug(db, alice):
    api = tenant_client(ACME, issue_token(alice))

    response = api.get("/api/v1/conversations/", HTTP_ACCEPT="text/html")

    assert response["Content-Type"] == "application/json"
    assert response.status_code in (200, 406)
    assert b"<html" not in response.content


@pytest.mark.parametrize(("debug", "browsable"), [("1", True), ("0", False)])
def test_the_browsable_api_renderer_follows_debug(debug, browsable, tmp_path):
    code = (
        "import django; django.setup(); from rest_framework.settings import api_settings; "
        "print(any(r.__name__ == 'BrowsableAPIRenderer' for r in api_settings.DEFAULT_RENDERER_CLASSES))"
    )
    result = run(
        [sys.executable, "-c", code],
        clean_env(DEBUG=debug, SECRET_KEY=STRONG_KEY, HELPDESK_VAR_DIR=str(tmp_path)),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(browsable)


def test_the_api_token_idle_time_is_configured_by_the_environment(tmp_path):
    code = "import django; django.setup(); from knox.settings import knox_settings as k; print(k.TOKEN_TTL, k.AUTO_REFRESH)"
    result = run(
        [sys.executable, "-c", code],
        clean_env(API_TOKEN_IDLE_HOURS="2", SECRET_KEY=STRONG_KEY, HELPDESK_VAR_DIR=str(tmp_path)),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2:00:00 True"


# ------------------------------------------------------------------ health check


def test_healthz_reports_a_failure_without_its_internal_text(db, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    response = public_client().get("/healthz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "degraded",
        "database": "ok",
        "redis": "error",
        "parked_webhook_events": 0,
    }
    assert "health check: redis is not reachable" in caplog.text
    assert "Connection refused" in caplog.text or "Error" in caplog.text  # the detail goes to the log only


def test_healthz_says_ok_when_all_is_well(db):
    response = public_client().get("/healthz")

    assert (response.status_code, response.json()) == (
        200,
        {"status": "ok", "database": "ok", "redis": "ok", "parked_webhook_events": 0},
    )
