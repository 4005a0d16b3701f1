"""Tickets, SLAs and reporting rollups arrive with the tickets issue; the app is placed in TENANT_APPS now so
that no app ever has to move between schemas."""
