from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from helpdesk.tenancy.access import current_tenant, membership_of
from helpdesk.tenancy.models import Role


class IsTenantMember(BasePermission):
    """The authenticated user must be a member of the tenant whose domain the request came to."""

    message = "You are not a member of this helpdesk."

    def has_permission(self, request: Request, view: Any) -> bool:
        membership = membership_of(request.user, current_tenant())  # type: ignore[arg-type]
        request.membership = membership  # type: ignore[attr-defined]
        return membership is not None


class IsTenantAdmin(IsTenantMember):
    """A member of the tenant with the admin role."""

    message = "Only admins may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return super().has_permission(request, view) and request.membership.role == Role.ADMIN  # type: ignore[attr-defined]


class IsSupervisorOrAdmin(IsTenantMember):
    """A member of the tenant with the supervisor or admin role."""

    message = "Only supervisors and admins may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return super().has_permission(request, view) and request.membership.role in (  # type: ignore[attr-defined]
            Role.SUPERVISOR,
            Role.ADMIN,
        )


class IsAdminOrReadOnly(IsTenantMember):
    """Every member reads; admins change (settings documents)."""

    message = "Only admins change these settings."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in ("GET", "HEAD", "OPTIONS") or request.membership.role == Role.ADMIN  # type: ignore[attr-defined]
