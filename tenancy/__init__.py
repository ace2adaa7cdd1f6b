"""Tenantry's reusable schema-per-tenant layer: naming, registry, request path, migrations."""
