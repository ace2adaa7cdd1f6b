"""Seeing a running service: request records, logs, metrics, and tags for pg_stat_activity."""
