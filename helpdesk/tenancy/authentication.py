"""API token authentication: django-rest-knox's, with one statement less per request."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox import auth
from knox.models import AuthToken
from knox.signals import token_expired


class TokenAuthentication(auth.TokenAuthentication):
    """knox's `Authorization: Token` authentication (hashed tokens, idle expiry moved on by every use).

    knox also reads every other token of the user on every request, to delete the expired ones: one more
    statement per API call, growing with the user's tokens. Here a request checks only its own token (an
    expired one is refused and deleted, as in knox); the user's other expired tokens are deleted when a new
    token is issued (helpdesk.tenancy.actions.do_issue_api_token), where tokens accumulate."""

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of knox's tokens (drf-spectacular's, which names knox's class only)."""

    target_class = "helpdesk.tenancy.authentication.TokenAuthentication"
