"""Tenantry's SaaS service: the FastAPI app, its tenant-scoped resources and the CLI."""
