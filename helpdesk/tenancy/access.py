"""Who may do what in which tenant: the one place membership is looked up."""

from __future__ import annotations

from django.db import connection

from helpdesk.tenancy.models import Membership, Tenant, User


def current_schema() -> str:
    """The schema the connection works in now (django-tenants keeps it on the connection)."""
    return str(getattr(connection, "schema_name", "public"))


def current_tenant() -> Tenant | None:
    tenant = getattr(connection, "tenant", None)
    return tenant if isinstance(tenant, Tenant) else None


def membership_of(user: User | None, tenant: Tenant | None) -> Membership | None:
    if user is None or tenant is None or not user.is_authenticated or not user.is_active:
        return None
    known: dict[int, Membership | None] = getattr(user, "_memberships", {})
    if tenant.pk in known:  # read with the user's API token, in this request
        return known[tenant.pk]
    return Membership.objects.filter(user_id=user.pk, tenant_id=tenant.pk).first()


def remember_membership(user: User, tenant: Tenant, membership: Membership | None) -> None:
    """The user's membership of the tenant (None: not a member), read together with the user: membership_of
    gives it without asking the database again (helpdesk.tenancy.authentication)."""
    user._memberships = {tenant.pk: membership}  # type: ignore[attr-defined]
