"""A tenant's life: onboarding (onboarding.py), then suspend, archive, restore, purge, keys,
export and import.

Each operation is one transaction that either completes or leaves nothing changed, and announces
itself with NOTIFY so that every API process drops its cached copy of the tenant at once.
"""
