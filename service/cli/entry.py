"""The `tenantry` executable (the console script): the Typer app, started without collections."""

import gc


def main() -> None:
    """The garbage collector stays off while the process starts (every import allocates
    long-lived objects that a collection would only walk over) and comes back, with those
    objects frozen out of its way, when a command starts its work (service.cli.common.begin_work).
    """
    gc.disable()
    from service.cli import app

    app(prog_name="tenantry")
