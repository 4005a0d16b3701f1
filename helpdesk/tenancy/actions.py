"""Operator actions on the shared schema: tenants, users, WhatsApp numbers. Management commands and (later)
the admin UI call these."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken

from helpdesk import crypto, live
from helpdesk.tenancy.models import Domain, Membership, Role, Tenant, User, UserSession, WhatsAppNumber

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
RESERVED_SLUGS = {"public", "pg_catalog", "information_schema"}


class TenancyError(Exception):
    """A refused change; `code` and `http_status` for the API."""

    def __init__(self, message: str, code: str = "invalid", http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


def do_create_tenant(slug: str, name: str, domain: str) -> Tenant:
    """A tenant with its own schema (migrated now) and its domain. Refused if the slug or domain is taken."""
    if not SLUG_PATTERN.match(slug) or slug in RESERVED_SLUGS or slug.startswith("pg_"):
        raise TenancyError(
            f"{slug!r} is not a valid slug: lower-case letters, digits and _, starting with a letter."
        )
    domain = domain.strip().lower()
    if not domain or domain == settings.PUBLIC_DOMAIN:
        raise TenancyError(f"{domain!r} cannot be a tenant's domain.")
    if Tenant.objects.filter(schema_name=slug).exists():
        raise TenancyError(f"A tenant {slug!r} exists already.")
    if Domain.objects.filter(domain=domain).exists():
        raise TenancyError(f"The domain {domain!r} belongs to another tenant.")
    tenant = Tenant(schema_name=slug, name=name or slug)
    tenant.save(verbosity=0)  # creates and migrates the schema
    Domain.objects.create(domain=domain, tenant=tenant, is_primary=True)
    return tenant


def ensure_public_tenant() -> Tenant:
    """The public tenant on PUBLIC_DOMAIN, which serves Meta's webhook and the health check."""
    public, _ = Tenant.objects.get_or_create(schema_name="public", defaults={"name": "Platform"})
    Domain.objects.get_or_create(
        domain=settings.PUBLIC_DOMAIN, defaults={"tenant": public, "is_primary": True}
    )
    return public


def tenant_by_slug(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(schema_name=slug).exclude(schema_name="public").first()
    if tenant is None:
        raise TenancyError(f"There is no tenant {slug!r}.")
    return tenant


@transaction.atomic
def do_add_member(tenant: Tenant, email: str, role: str, password: str | None, name: str = "") -> Membership:
    """Create the user if new (else update the password when one is given) and set their role in the tenant. An
    existing user's row is locked first, as a revocation locks it (see _revoke_everything)."""
    if role not in Role.values:
        raise TenancyError(f"Unknown role {role!r}; use one of {', '.join(Role.values)}.")
    email = email.strip().lower()
    if "@" not in email:
        raise TenancyError(f"{email!r} is not an email address.")
    user = User.objects.select_for_update().filter(email=email).first()
    if user is None:
        if not password:
            raise TenancyError("A new user needs a password.")
        check_password_strength(password, User(email=email, name=name))
        user = User.objects.create_user(email, password, name=name)
    elif password:
        do_set_password(user, password)
    membership, _ = Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
    return membership


def check_password_strength(password: str, user: User) -> None:
    """AUTH_PASSWORD_VALIDATORS, as a TenancyError with every reason."""
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise TenancyError("The password was refused: " + " ".join(error.messages)) from None


@transaction.atomic
def do_set_password(user: User, password: str) -> None:
    """A new password (validated); every API token and session of the user ends, and so do open websockets."""
    check_password_strength(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    _revoke_everything(user)


def do_issue_api_token(user: User) -> tuple[str, datetime | None]:
    """A new API token for the user and its expiry: the token is returned once and stored only as a hash; it
    expires when unused for API_TOKEN_IDLE_HOURS. The user's expired tokens are deleted now (requests check only
    their own token: helpdesk.tenancy.authentication)."""
    AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
    instance, token = AuthToken.objects.create(user=user)
    return str(token), instance.expiry


@transaction.atomic
def do_sign_out_everywhere(user: User) -> None:
    """Delete every API token and session of the user and close their websockets."""
    _revoke_everything(user)


@transaction.atomic
def do_deactivate_user(email: str) -> User:
    """The user can no longer sign in anywhere: tokens and sessions deleted, open websockets closed."""
    user = User.objects.select_for_update().filter(email=email.strip().lower()).first()
    if user is None:
        raise TenancyError(f"There is no user {email!r}.")
    user.is_active = False
    user.save(update_fields=["is_active"])
    _revoke_everything(user)
    return user


@transaction.atomic
def do_remove_member(tenant: Tenant, email: str) -> None:
    """End a user's membership of one tenant; their websockets on that tenant close (the API and pages refuse
    them there already: every request checks membership)."""
    membership = Membership.objects.filter(tenant=tenant, user__email=email.strip().lower()).first()
    if membership is None:
        raise TenancyError(f"{email!r} is not a member of {tenant.schema_name}.")
    user_id = membership.user_id
    membership.delete()
    schema = tenant.schema_name
    transaction.on_commit(lambda: live.publish_revocation(user_id, schema, tenant_schemas=[schema]))


def _revoke_everything(user: User) -> None:
    # The user's row is locked first: a membership being added (do_add_member locks it too) is then either among
    # the tenants read here, or committed after this revocation (and its sockets see the revocation).
    list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
    schemas = list(Membership.objects.filter(user=user).values_list("tenant__schema_name", flat=True))
    AuthToken.objects.filter(user=user).delete()
    UserSession.objects.filter(user=user).delete()
    user_id = user.pk
    transaction.on_commit(lambda: live.publish_revocation(user_id, tenant_schemas=schemas))


def _digits(label: str, value: str) -> str:
    value = value.strip().lstrip("+").replace(" ", "").replace("-", "")
    if not value.isdigit() or len(value) > 32:
        raise TenancyError(f"The {label} must be digits, got {value[:40]!r}.")
    return value


@transaction.atomic
def do_add_number(
    tenant: Tenant,
    *,
    phone_number_id: str,
    waba_id: str,
    display_number: str,
    access_token: str,
    app_secret: str,
    verify_token: str = "",
    simulator: bool = False,
    new_only: bool = False,
    send_rate: int | None = None,
) -> WhatsAppNumber:
    """Register a Cloud API number for a tenant. A number belongs to one tenant only; re-adding it to the same
    tenant updates its credentials (unless `new_only`: then it is refused). Without a verify token one is
    generated."""
    phone_number_id = _digits("phone number id", phone_number_id)
    waba_id = _digits("WABA id", waba_id)
    display_number = _digits("display number", display_number)
    if not access_token or not app_secret:
        raise TenancyError("The access token and app secret are both required.")
    number = WhatsAppNumber.objects.select_for_update().filter(phone_number_id=phone_number_id).first()
    if number is not None and (new_only or number.tenant_id != tenant.pk):
        raise TenancyError(
            f"Phone number id {phone_number_id} is registered already"
            + (" to another helpdesk." if number.tenant_id != tenant.pk else "."),
            code="number_exists",
            http_status=409,
        )
    number = number or WhatsAppNumber(tenant=tenant, phone_number_id=phone_number_id)
    number.waba_id = waba_id
    number.display_number = display_number
    number.access_token = access_token
    number.app_secret = app_secret
    number.set_verify_token(verify_token or secrets.token_urlsafe(24))
    number.simulator = simulator
    if send_rate is not None:
        number.send_rate_setting = _send_rate(number, send_rate)
    number.save()
    return number


def _send_rate(number: WhatsAppNumber, rate: Any) -> int:
    """A broadcast pace an admin chose: whole messages per second, within Meta's throughput for the number."""
    if not isinstance(rate, int) or isinstance(rate, bool) or not 1 <= rate <= number.max_send_rate:
        held = (
            " (Meta holds a number also used in the WhatsApp Business app to 20)"
            if number.coexistence
            else ""
        )
        raise TenancyError(
            f"send_rate: a whole number of messages per second from 1 to {number.max_send_rate}{held}."
        )
    return rate


@transaction.atomic
def do_update_number(number: WhatsAppNumber, **changes: Any) -> WhatsAppNumber:
    """Change a number's account, display number, simulator mode or credentials: a credential is replaced
    only when a new one is given (the old one is never shown)."""
    locked = WhatsAppNumber.objects.select_for_update().get(pk=number.pk)
    new_id = changes.pop("phone_number_id", None)
    if new_id is not None and _digits("phone number id", new_id) != locked.phone_number_id:
        raise TenancyError("A number's phone number id cannot change: remove it and add the new one.")
    if "waba_id" in changes:
        locked.waba_id = _digits("WABA id", changes.pop("waba_id"))
    if "display_number" in changes:
        locked.display_number = _digits("display number", changes.pop("display_number"))
    for secret in ("access_token", "app_secret"):
        value = changes.pop(secret, None)
        if value:
            setattr(locked, secret, value)
    if changes.get("verify_token"):
        locked.set_verify_token(changes.pop("verify_token"))
    if "simulator" in changes:
        locked.simulator = bool(changes.pop("simulator"))
    if "send_rate" in changes:
        locked.send_rate_setting = _send_rate(locked, changes.pop("send_rate"))
    locked.save()
    return locked


def do_regenerate_verify_token(number: WhatsAppNumber) -> WhatsAppNumber:
    return do_update_number(number, verify_token=secrets.token_urlsafe(24))


@transaction.atomic
def do_remove_number(number: WhatsAppNumber) -> None:
    """Remove a number with no conversations (ProtectedError otherwise: their history must not be lost). Run
    in the tenant's schema, where its conversations are."""
    WhatsAppNumber.objects.select_for_update().filter(pk=number.pk).first()
    number.delete()


def do_rotate_credentials_key() -> int:
    """Re-encrypt every number's access token and app secret with the newest encryption key; returns how many
    numbers were rewritten. Each number in its own short transaction, so a long run blocks nobody."""
    count = 0
    for pk in WhatsAppNumber.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            number = WhatsAppNumber.objects.select_for_update().filter(pk=pk).first()
            if number is None:
                continue
            number.access_token_encrypted = crypto.reencrypt(number.access_token_encrypted)
            number.app_secret_encrypted = crypto.reencrypt(number.app_secret_encrypted)
            if number.verify_token_encrypted:
                number.verify_token_encrypted = crypto.reencrypt(number.verify_token_encrypted)
            number.save(
                update_fields=["access_token_encrypted", "app_secret_encrypted", "verify_token_encrypted"]
            )
            count += 1
    return count
