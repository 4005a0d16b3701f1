"""API token authentication: django-rest-knox's, in one statement per request with the membership."""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from hmac import compare_digest
from typing import Any

from django.db import connection
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_tenants.utils import get_public_schema_name
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox import auth
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions

from helpdesk.tenancy.access import current_tenant, remember_membership
from helpdesk.tenancy.models import Membership, Tenant, User


class TokenAuthentication(auth.TokenAuthentication):
    """knox's `Authorization: Token` authentication (hashed tokens, idle expiry moved on by every use), with two
    statements less per API call:

    - knox reads the token with its user, then every other token of the user (to delete the expired ones), and the
      permission check then reads the user's membership of the tenant. Here one statement reads the token, its
      user and the membership (helpdesk.tenancy.access.membership_of then has it).
    - A request checks only its own token (an expired one is refused and deleted, as in knox); the user's other
      expired tokens are deleted when a new token is issued (helpdesk.tenancy.actions.do_issue_api_token),
      which is where tokens accumulate.
    """

    def authenticate_credentials(self, token: bytes) -> tuple[User, AuthToken]:
        message = _("Invalid token.")
        text = token.decode("utf-8")
        tenant = current_tenant()
        for auth_token, membership in _tokens_with_membership(text[: CONSTANTS.TOKEN_KEY_LENGTH], tenant):
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(text)
            except (TypeError, binascii.Error):
                raise exceptions.AuthenticationFailed(message) from None
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                user, checked = self.validate_user(auth_token)
                if tenant is not None:
                    remember_membership(user, tenant, membership)
                return user, checked
        raise exceptions.AuthenticationFailed(message)

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


def _columns(model: type[Model], alias: str) -> list[str]:
    return [
        f"{alias}.{connection.ops.quote_name(str(field.column))}" for field in model._meta.concrete_fields
    ]


def _tokens_with_membership(key: str, tenant: Tenant | None) -> Iterator[tuple[AuthToken, Membership | None]]:
    """The tokens under `key` (knox's prefix), each with its user and the user's membership of `tenant`."""
    public = connection.ops.quote_name(get_public_schema_name())
    tables = {
        model: connection.ops.quote_name(model._meta.db_table) for model in (AuthToken, User, Membership)
    }
    models: list[tuple[type[Model], str]] = [(AuthToken, "t"), (User, "u"), (Membership, "m")]
    sql = (
        f"SELECT {', '.join(column for model, alias in models for column in _columns(model, alias))} "  # noqa: S608
        f"FROM {public}.{tables[AuthToken]} t "
        f"JOIN {public}.{tables[User]} u ON u.id = t.user_id "
        f"LEFT JOIN {public}.{tables[Membership]} m ON m.user_id = u.id AND m.tenant_id = %s "
        "WHERE t.token_key = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant.pk if tenant is not None else None, key])
        rows = cursor.fetchall()
    for row in rows:
        values: list[Any] = list(row)
        built: list[Model | None] = []
        for model, _alias in models:
            fields = model._meta.concrete_fields
            own, values = values[: len(fields)], values[len(fields) :]
            if own[[f.primary_key for f in fields].index(True)] is None:  # no membership (LEFT JOIN)
                built.append(None)
                continue
            converted = [_from_db(field, value, connection) for field, value in zip(fields, own, strict=True)]
            built.append(model.from_db(connection.alias, [f.attname for f in fields], converted))
        auth_token, user, membership = built
        assert isinstance(auth_token, AuthToken)
        assert isinstance(user, User)
        auth_token.user = user
        if isinstance(membership, Membership):
            membership.user = user
            yield auth_token, membership
        else:
            yield auth_token, None


def _from_db(field: Any, value: Any, conn: Any) -> Any:
    """A column's value as the ORM would load it (the field's own conversion, e.g. JSON or encrypted text)."""
    if value is not None and hasattr(field, "from_db_value"):
        return field.from_db_value(value, None, conn)
    return value


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of knox's tokens (drf-spectacular's, which names knox's class only)."""

    target_class = "helpdesk.tenancy.authentication.TokenAuthentication"
