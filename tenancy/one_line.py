"""Any error as the one line a command-line user is shown (the CLI's and Alembic's last resort)."""

REGISTRY_MISSING = (
    "this database has no Tenantry registry (schema tenantry): run `tenantry migrate` first"
)


def describe(exc: BaseException, hint: str = "") -> str:
    """One line for an error nobody handled closer to where it happened."""
    if isinstance(exc, BrokenPipeError):
        return "output closed early (broken pipe)"
    postgres = postgres_error(exc)
    if postgres is not None:
        sqlstate = getattr(postgres, "sqlstate", None)
        message = first_line(postgres)
        if sqlstate in ("42P01", "3F000") and "tenantry." in message:
            return REGISTRY_MISSING
        if sqlstate == "3F000":
            return f"{message} (dropped outside Tenantry?)"
        return f"database: {message}"
    if isinstance(exc, LookupError | ValueError | OSError):
        return first_line(exc)
    suffix = f"; {hint}" if hint else ""
    return f"{first_line(exc)} ({type(exc).__name__}{suffix})"


def postgres_error(exc: BaseException) -> BaseException | None:
    """The asyncpg error somewhere in exc's chain (SQLAlchemy wraps it twice), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__module__.startswith("asyncpg") and hasattr(current, "sqlstate"):
            return current
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return None


def first_line(exc: BaseException) -> str:
    """The first line of exc's message, stripped; its type's name when it has no message."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def first_line_with_type(exc: BaseException) -> str:
    """`UniqueViolationError: duplicate key ...`: first_line after the type's name (for a
    per-tenant migrate result, where the type says as much as the message)."""
    if not str(exc).strip():
        return type(exc).__name__
    return f"{type(exc).__name__}: {first_line(exc)}"
