"""The `tenantry` command line; `main` is the console script."""

import gc

from service.cli.main import app


def main() -> None:
    """`tenantry`: the garbage collector stays off while the process starts (every import allocates
    long-lived objects that a collection would only walk over) and comes back, with those
    objects frozen out of its way, when a command starts its work (service.cli.common.begin_work).
    """
    gc.disable()
    app()


__all__ = ["app", "main"]
