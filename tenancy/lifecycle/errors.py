"""What can go wrong in a tenant's lifecycle, as exceptions the CLI and HTTP layers translate."""


class LifecycleError(Exception):
    """An expected refusal: the operator gets one line saying why, nothing was changed."""


class TenantExists(LifecycleError):
    """The slug (or its schema) is taken."""


class UnknownTenant(LifecycleError, LookupError):
    """No tenant has this slug."""


class UnknownKey(LifecycleError, LookupError):
    """No active key has this id."""


class TenantStateConflict(LifecycleError):
    """The tenant exists but is in the wrong state for this operation (e.g. archived)."""
