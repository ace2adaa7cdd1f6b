"""Seeing a running service: logs and metrics of the request records (made by
tenancy.middleware.observer), and tags for pg_stat_activity."""
