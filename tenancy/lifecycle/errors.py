"""What can go wrong in a tenant's lifecycle, as exceptions the CLI and HTTP layers translate."""


class LifecycleError(Exception):
    """An expected refusal: the operator gets one line saying why, nothing was changed."""


class TenantExists(LifecycleError):
    """The slug (or its schema) is taken."""


class InvalidDisplayName(LifecycleError, ValueError):
    """A display name over DISPLAY_NAME_MAX_LENGTH characters or holding a control character."""


class UnknownTenant(LifecycleError, LookupError):
    """No tenant has this slug."""


class UnknownKey(LifecycleError, LookupError):
    """No active key has this id."""


class TenantStateConflict(LifecycleError):
    """The tenant exists but is in the wrong state for this operation (e.g. archived)."""


class ProcessBehind(LifecycleError):
    """This process's code is older than the revisions deployed on disk (or than the tenant's):
    it cannot build or bring a tenant to the head every newer process expects. Restart it."""


class SchemaMissing(LifecycleError):
    """The tenant is registered but its schema (or its archive) is not in the database."""
