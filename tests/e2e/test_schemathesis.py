"""The OpenAPI schema is honest: schemathesis generates requests from /api/schema/ (valid and invalid ones) and
sends them to the live server as an admin of acme; no answer may be a 5xx, a status the operation does not
document, or a body that does not match its documented schema (errors included: `{detail, code}`).

Bounded: a few examples per operation and a fixed seed, so a run takes well under a minute and a failure
reproduces (SCHEMATHESIS_SEED and SCHEMATHESIS_MAX_EXAMPLES change both for a longer, different run).
What the run changes in acme (support settings, the admin's availability) is put back afterwards.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django_tenants.utils import schema_context

from tests.conftest import ACME, issue_token
from tests.e2e.conftest import LiveStack

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "unsupported_method",  # a method the schema does not list for a path is a 405
]
# Not negative_data_rejection: the API deliberately reads an empty filter (`?status=`) as no filter, which that
# check counts as accepting an invalid value.
# Multipart uploads: the dev server (daphne) answers a malformed multipart body (`--boundary--` alone) with an
# empty 400 before Django sees it, which the content-type check counts against us; Django itself answers it with
# the JSON error (tests/test_consent.py drives the import with the test client, bad files included).
EXCLUDED = ["POST /api/v1/contacts/import/"]
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20260101")
TIME_LIMIT = 170  # seconds: the run must stay well under three minutes


@pytest.fixture
def admin_token(committed_db: None) -> Iterator[str]:
    """ada's API token; acme's support settings, ada's availability and the login throttle as they were,
    afterwards (schemathesis's failed sign-ins from 127.0.0.1 would otherwise lock out later tests)."""
    from axes.utils import reset as reset_login_throttle

    from helpdesk.tenancy.models import Membership, User
    from tickets import support_settings
    from tickets.actions import forget_support_rules

    ada = User.objects.get(email="ada@acme.test")
    with schema_context("acme"):
        before = support_settings.support_settings_data()
    availability = list(Membership.objects.filter(user=ada).values_list("pk", "is_available"))
    yield issue_token(ada)
    with schema_context("acme"):
        support_settings.check_update_support_settings(before)
        forget_support_rules()
    for pk, available in availability:
        Membership.objects.filter(pk=pk).update(is_available=available)
    reset_login_throttle()


def run_schemathesis(stack: LiveStack, token: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("st")
    command: list[Any] = [
        st,
        "run",
        f"http://127.0.0.1:{stack.port}/api/schema/",
        "--header",
        f"Host: {ACME['domain']}",
        "--header",
        f"Authorization: Token {token}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--workers",  # one: with two threads, hypothesis' lambda descriptions (ast.parse) broke on CPython 3.11
        "1",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--no-color",
        *[part for name in EXCLUDED for part in ("--exclude-name", name)],
    ]
    return subprocess.run(
        [str(part) for part in command],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )


def test_every_generated_request_is_answered_as_the_schema_documents(
    live_stack: LiveStack, admin_token: str, tmp_path: Path
) -> None:
    result = run_schemathesis(live_stack, admin_token, tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20_000:]
    # and every operation of the schema was exercised (none skipped, the schema was not empty)
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected, output[-5_000:]
    assert tested, output[-5_000:]
    assert int(selected[1]) == int(selected[2]) - len(EXCLUDED) == int(tested[1]) >= 20, output[-5_000:]
