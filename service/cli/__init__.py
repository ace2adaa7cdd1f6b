"""The `tenantry` command line: the Typer app is service.cli.main.app, the executable
service.cli.entry.main."""
