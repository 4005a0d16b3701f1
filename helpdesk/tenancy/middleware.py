"""The tenant of a request, from its Host header, with the search path set once per request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_public_schema_name

from helpdesk.tenancy.models import Domain, Tenant


class TenantMiddleware(TenantMainMiddleware):
    """django-tenants' TenantMainMiddleware, finding the tenant without a search path of its own.

    Theirs sets the search path to `public` for the domain lookup and then to the tenant's schema: two
    `SET search_path` round trips on every request (TENANT_LIMIT_SET_CALLS only skips repeats for one schema,
    and a pooled connection forgets the path when it goes back to the pool). The lookup here names its schema
    (`public.tenancy_domain`), so it runs in whatever path the connection has, and the request's first
    query sets the tenant's path: once per request. The rest is theirs (unknown host, URL routing)."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        try:
            hostname = self.hostname_from_request(request)
        except DisallowedHost:
            return HttpResponseNotFound()
        tenant = tenant_for_hostname(hostname)
        if tenant is None:
            connection.set_schema_to_public()  # type: ignore[attr-defined]
            return self.no_tenant_found(request, hostname)  # type: ignore[no-any-return]
        tenant.domain_url = hostname
        request.tenant = tenant  # type: ignore[attr-defined]
        connection.set_tenant(tenant)  # type: ignore[attr-defined]
        self.setup_url_routing(request)
        return None


def tenant_for_hostname(hostname: str) -> Tenant | None:
    """The tenant whose domain `hostname` is, in one statement that does not depend on the search path."""
    public = connection.ops.quote_name(get_public_schema_name())
    domains, tenants = (connection.ops.quote_name(model._meta.db_table) for model in (Domain, Tenant))
    fields = Tenant._meta.concrete_fields
    columns = ", ".join(f"t.{connection.ops.quote_name(field.column)}" for field in fields)
    sql = (
        f"SELECT {columns} FROM {public}.{domains} d JOIN {public}.{tenants} t ON t.id = d.tenant_id "  # noqa: S608 (quoted names)
        "WHERE d.domain = %s"
    )
    with _search_path_not_needed(), connection.cursor() as cursor:
        cursor.execute(sql, [hostname])
        row = cursor.fetchone()
    if row is None:
        return None
    return Tenant.from_db(connection.alias, [field.attname for field in fields], list(row))


@contextmanager
def _search_path_not_needed() -> Iterator[None]:
    """For statements that name their schemas: django-tenants would set the search path before them when it
    does not know the connection's (a connection fresh from the pool, or just switched to another tenant).
    The path stays as unknown as it was afterwards, so the next query sets it."""
    known = connection.search_path_set_schemas  # type: ignore[attr-defined]
    if not known:
        connection.search_path_set_schemas = [get_public_schema_name()]  # type: ignore[attr-defined]
    try:
        yield
    finally:
        connection.search_path_set_schemas = known  # type: ignore[attr-defined]
