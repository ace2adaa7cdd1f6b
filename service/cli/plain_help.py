"""Plain, conventional help: `SLUG` for an argument, as Click writes it, not Typer's `{slug}`
and `slug <str>` (Typer 0.2x's help for arguments; options show their metavar already).

Applied once, by service.cli.main; tests/cli/test_cli_help.py fails if a Typer upgrade changes it.
"""

from typing import Any

from typer.core import TyperArgument


def _name(argument: TyperArgument) -> str:
    name = argument.metavar or (argument.name or "").upper()
    return name + ("..." if argument.nargs != 1 else "")


def _usage_display_name(self: TyperArgument) -> str:
    return _name(self) if self.required else f"[{_name(self)}]"


_typer_help_record = TyperArgument.get_help_record


def _get_help_record(self: TyperArgument, ctx: Any) -> tuple[str, str] | None:
    record = _typer_help_record(self, ctx)
    return None if record is None else (_name(self), record[1])


def apply() -> None:
    TyperArgument._usage_display_name = _usage_display_name  # type: ignore[method-assign]
    TyperArgument.get_help_record = _get_help_record  # type: ignore[method-assign]
