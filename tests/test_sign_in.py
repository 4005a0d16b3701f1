"""Signing in and staying signed in: hashed API tokens with an idle expiry, revocation (password change,
deactivation, sign out everywhere), login throttling and password validation on every path.

(The websockets' side of revocation: tests/test_consumers.py.)"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken

from helpdesk.tenancy.actions import TenancyError, do_add_member
from helpdesk.tenancy.models import Membership, User, UserSession
from tests.conftest import ACME, PASSWORD, api_token, public_client, tenant_client

NEW_PASSWORD = "Fresh-Passphrase-7730"
WRONG = "not-the-password-1"


def token_works(token: str) -> bool:
    status = tenant_client(ACME, token).get("/api/v1/conversations/").status_code
    assert status in (200, 401), status
    return status == 200


def browser(email: str) -> Client:
    """A browser signed in on acme through the real login form (a session row of the user)."""
    client = tenant_client(ACME)
    response = client.post("/login/", {"username": email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def signed_in(client: Client) -> bool:
    response = client.get("/inbox/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def ask_token(email: str, password: str, client: Client | None = None) -> Any:
    return (client or tenant_client(ACME)).post(
        "/api/v1/auth/token/", {"email": email, "password": password}, content_type="application/json"
    )


# ------------------------------------------------------------------ tokens


def test_api_tokens_are_stored_only_as_a_hash(db, alice):
    token = api_token("alice@acme.test")

    stored = AuthToken.objects.get(user=alice)
    assert stored.digest == hash_token(token)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM knox_authtoken")
        cells = [str(cell) for row in cursor.fetchall() for cell in row]
    assert not any(token in cell for cell in cells)  # a database dump gives no usable token
    assert token_works(token)


def test_a_token_unused_for_the_idle_time_expires(db, alice):
    token = api_token("alice@acme.test")
    stored = AuthToken.objects.get(user=alice)
    # issued for API_TOKEN_IDLE_HOURS (24 by default)
    assert abs(stored.expiry - (timezone.now() + timedelta(hours=24))) < timedelta(minutes=1)

    # when the idle time has passed without a use
    AuthToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() - timedelta(seconds=1))

    # then the token is refused and gone
    response = tenant_client(ACME, token).get("/api/v1/conversations/")
    assert response.status_code == 401
    assert not AuthToken.objects.filter(user=alice).exists()


def test_every_use_moves_the_idle_expiry_on(db, alice):
    token = api_token("alice@acme.test")
    soon = timezone.now() + timedelta(minutes=5)
    AuthToken.objects.filter(user=alice).update(expiry=soon)

    assert token_works(token)

    assert abs(AuthToken.objects.get(user=alice).expiry - (timezone.now() + timedelta(hours=24))) < timedelta(
        minutes=1
    )


def test_logout_ends_only_the_token_it_is_sent_with(db, alice):
    first, second = api_token("alice@acme.test"), api_token("alice@acme.test")

    response = tenant_client(ACME, first).post("/api/v1/auth/logout/")

    assert response.status_code == 204
    assert (token_works(first), token_works(second)) == (False, True)


# ------------------------------------------------------------------ revocation


def test_a_new_password_from_create_tenant_user_revokes_tokens_and_sessions(db, alice, sam):
    token, session = api_token("alice@acme.test"), browser("alice@acme.test")
    sams_token = api_token("sam@acme.test")
    assert token_works(token)
    assert signed_in(session)

    # when the operator sets a new password on the command line
    call_command(
        "create_tenant_user", "acme", "alice@acme.test", "--role", "agent", "--password", NEW_PASSWORD
    )

    # then alice's tokens and sessions are gone, and only the new password works
    assert not token_works(token)
    assert not signed_in(session)
    assert not AuthToken.objects.filter(user=alice).exists()
    assert not UserSession.objects.filter(user=alice).exists()
    assert ask_token("alice@acme.test", PASSWORD).status_code == 400
    assert ask_token("alice@acme.test", NEW_PASSWORD).status_code == 200
    # and nobody else was signed out
    assert token_works(sams_token)


def test_deactivate_user_signs_the_user_out_everywhere_and_refuses_new_sign_ins(db, alice):
    token, session = api_token("alice@acme.test"), browser("alice@acme.test")

    call_command("deactivate_user", "Alice@acme.test")

    alice.refresh_from_db()
    assert alice.is_active is False
    assert not token_works(token)
    assert not signed_in(session)
    assert not AuthToken.objects.filter(user=alice).exists()
    assert not UserSession.objects.filter(user=alice).exists()
    assert ask_token("alice@acme.test", PASSWORD).status_code == 400
    assert (
        tenant_client(ACME).post("/login/", {"username": "alice@acme.test", "password": PASSWORD}).status_code
        == 200
    )


def test_deactivate_user_refuses_an_unknown_email(db):
    active_before = list(User.objects.filter(is_active=True).values_list("pk", flat=True))

    with pytest.raises(CommandError, match=r"There is no user 'nobody@acme\.test'"):
        call_command("deactivate_user", "nobody@acme.test")

    assert list(User.objects.filter(is_active=True).values_list("pk", flat=True)) == active_before


def test_sign_out_everywhere_over_the_api_ends_every_token_and_session_of_the_user(db, alice):
    token, other_token, session = (
        api_token("alice@acme.test"),
        api_token("alice@acme.test"),
        browser("alice@acme.test"),
    )
    sams_session = browser("sam@acme.test")

    response = tenant_client(ACME, token).post("/api/v1/auth/logout-all/")

    assert response.status_code == 204
    assert (token_works(token), token_works(other_token), signed_in(session)) == (False, False, False)
    assert signed_in(sams_session)


def test_sign_out_everywhere_from_the_account_menu(db, alice):
    token, session = api_token("alice@acme.test"), browser("alice@acme.test")
    page = session.get("/inbox/").content.decode()
    assert 'action="/logout-all/"' in page
    assert 'data-testid="logout-all-button"' in page

    response = session.post("/logout-all/")

    assert (response.status_code, response["Location"]) == (302, "/login/")
    assert (token_works(token), signed_in(session)) == (False, False)


def test_sign_out_everywhere_needs_a_signed_in_user(db):
    tokens_before = AuthToken.objects.count()

    assert tenant_client(ACME).post("/api/v1/auth/logout-all/").status_code in (401, 403)
    assert tenant_client(ACME).get("/logout-all/").status_code == 405
    assert AuthToken.objects.count() == tokens_before


def test_remove_tenant_user_ends_the_membership(db, alice):
    token = api_token("alice@acme.test")

    call_command("remove_tenant_user", "acme", "alice@acme.test")

    assert not Membership.objects.filter(user=alice).exists()
    assert tenant_client(ACME, token).get("/api/v1/conversations/").status_code == 403
    with pytest.raises(CommandError, match="is not a member of acme"):
        call_command("remove_tenant_user", "acme", "alice@acme.test")


# ------------------------------------------------------------------ password validation on every path


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Ab3-x", "too short"),
        ("83619274051", "entirely numeric"),
        ("password123", "too common"),
        ("alice@acme.test", "too similar"),
    ],
)
def test_create_tenant_user_refuses_a_weak_new_password_and_changes_nothing(db, alice, password, reason):
    token = api_token("alice@acme.test")

    with pytest.raises(CommandError, match=f"The password was refused: .*{reason}"):
        call_command(
            "create_tenant_user", "acme", "alice@acme.test", "--role", "agent", "--password", password
        )

    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
    assert token_works(token)


def test_a_new_user_with_a_weak_password_is_not_created(db, acme):
    with pytest.raises(TenancyError, match="too common"):
        do_add_member(acme, "carol@acme.test", "agent", "password123")

    assert not User.objects.filter(email="carol@acme.test").exists()


def test_createsuperuser_validates_the_password_even_without_a_prompt(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "12345678")

    with pytest.raises(CommandError, match="too common"):
        call_command("createsuperuser", "--noinput", "--email", "root@platform.test")

    assert not User.objects.filter(email="root@platform.test").exists()


def test_the_demo_test_and_contract_passwords_pass_the_validators(db):
    from django.contrib.auth.password_validation import validate_password

    from conversations.management.commands.seed_demo import DEMO_PASSWORD
    from tickets.management.commands.seed_load import AGENT_PASSWORD

    for email, password in [
        ("agent@demo.test", DEMO_PASSWORD),
        ("agent1@load.test", AGENT_PASSWORD),
        ("alice@acme.test", PASSWORD),
        ("alice@acme.test", "Contract-Pw-9137!"),  # ../shared/contract/check.py
    ]:
        validate_password(password, User(email=email))


# ------------------------------------------------------------------ login throttling


def fail(times: int, email: str = "alice@acme.test", client: Client | None = None) -> list[int]:
    return [ask_token(email, WRONG, client).status_code for _ in range(times)]


def test_repeated_failures_for_an_account_lock_the_token_endpoint_with_retry_after(db, alice):
    tokens_before = AuthToken.objects.filter(user=alice).count()

    # four failures are answered as such; the fifth locks the account
    assert fail(5) == [400, 400, 400, 400, 429]

    # then even the right password, from another address, is answered 429 for the cooling-off period
    response = ask_token(
        "alice@acme.test", PASSWORD, Client(HTTP_HOST=ACME["domain"], REMOTE_ADDR="198.51.100.4")
    )
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert response.json() == {
        "detail": "Too many failed sign-in attempts. Please wait 15 minutes and try again.",
        "code": "too_many_attempts",
    }
    assert AuthToken.objects.filter(user=alice).count() == tokens_before
    # and other accounts are not locked
    assert (
        ask_token(
            "sam@acme.test", PASSWORD, Client(HTTP_HOST=ACME["domain"], REMOTE_ADDR="198.51.100.4")
        ).status_code
        == 200
    )


def test_repeated_failures_from_an_address_lock_that_address(db):
    attacker = Client(HTTP_HOST=ACME["domain"], REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="192.0.2.1")
    for n in range(5):
        ask_token(f"guess{n}@acme.test", WRONG, attacker)

    # the address is locked, whatever account it tries and whatever X-Forwarded-For it claims
    assert ask_token("alice@acme.test", PASSWORD, attacker).status_code == 429
    spoofing = Client(HTTP_HOST=ACME["domain"], REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="192.0.2.77")
    assert ask_token("alice@acme.test", PASSWORD, spoofing).status_code == 429
    # while alice signs in from elsewhere
    assert (
        ask_token(
            "alice@acme.test", PASSWORD, Client(HTTP_HOST=ACME["domain"], REMOTE_ADDR="198.51.100.4")
        ).status_code
        == 200
    )


def test_behind_a_proxy_the_forwarded_address_is_the_one_locked(db, settings):
    settings.PROXY_COUNT = 1
    via_proxy = {"HTTP_HOST": ACME["domain"], "REMOTE_ADDR": "10.0.0.2"}
    attacker = Client(**via_proxy, HTTP_X_FORWARDED_FOR="forged, 203.0.113.9")
    for n in range(5):
        ask_token(f"guess{n}@acme.test", WRONG, attacker)

    assert ask_token("alice@acme.test", PASSWORD, attacker).status_code == 429
    colleague = Client(**via_proxy, HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert ask_token("sam@acme.test", PASSWORD, colleague).status_code == 200


def test_the_lock_ends_after_the_cooling_off_period(db):
    from axes.models import AccessAttempt

    assert fail(5)[-1] == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert ask_token("alice@acme.test", PASSWORD).status_code == 200


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "Too many failed sign-in attempts. Please wait 15 minutes and try again."),
        ("id", "Terlalu banyak percobaan masuk yang gagal. Tunggu 15 menit lalu coba lagi."),
    ],
)
def test_the_login_page_explains_a_lock_in_the_users_language(db, language, message):
    client = Client(HTTP_HOST=ACME["domain"], HTTP_ACCEPT_LANGUAGE=language)
    statuses = [
        client.post("/login/", {"username": "alice@acme.test", "password": WRONG}).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]

    response = client.post("/login/", {"username": "alice@acme.test", "password": PASSWORD})

    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert message in response.content.decode()
    assert "sessionid" not in response.cookies


def test_the_operator_login_is_throttled_too(db):
    User.objects.create_superuser("root@platform.test", "Operator-pw-1")
    client = public_client()
    for _ in range(5):
        client.post("/login/", {"username": "root@platform.test", "password": WRONG})

    response = client.post("/login/", {"username": "root@platform.test", "password": "Operator-pw-1"})

    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "sessionid" not in response.cookies


def test_changepassword_signs_the_user_out_everywhere(db, alice, monkeypatch):
    token, session = api_token("alice@acme.test"), browser("alice@acme.test")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)  # the operator types it twice

    call_command("changepassword", "alice@acme.test", stdout=StringIO())

    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert not token_works(token)
    assert not signed_in(session)


def test_the_operator_signs_out_everywhere_on_the_public_domain(db):
    operator = User.objects.create_superuser("root@platform.test", "Operator-pw-1")
    client = public_client()
    assert (
        client.post("/login/", {"username": "root@platform.test", "password": "Operator-pw-1"}).status_code
        == 302
    )
    assert 'data-testid="logout-all-button"' in client.get("/operator/reports/").content.decode()

    response = client.post("/logout-all/")

    assert (response.status_code, response["Location"]) == (302, "/login/")
    assert not UserSession.objects.filter(user=operator).exists()
    assert client.get("/operator/reports/").status_code == 302
