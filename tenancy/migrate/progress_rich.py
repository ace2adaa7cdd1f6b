"""The live progress bar of `tenantry migrate` on a terminal (tenancy.migrate.progress picks it)."""

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from tenancy.migrate.progress import shared_line, summary_lines, tenant_line
from tenancy.migrate.results import Outcome, Summary, TenantResult


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} tenants/s" if task.speed else "", style="progress.data")


class RichReporter:
    """A live bar: done of total, failures, rate and ETA; failures are printed as they come."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("migrating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            _Rate(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.progress.add_task("tenants", total=0, failed=0)
        self.failed = 0

    def shared(self, from_rev: str | None, to_rev: str | None) -> None:
        self.console.print(shared_line(from_rev, to_rev), markup=False)

    def planned(self, pending: int) -> None:
        if not pending:
            return
        if not self.progress.live.is_started:
            self.progress.start()
        self.progress.update(self.task, total=self.progress.tasks[0].completed + pending)

    def tenant(self, result: TenantResult) -> None:
        if result.outcome is Outcome.CURRENT:
            return
        if result.outcome in (Outcome.FAILED, Outcome.MISSING):
            self.failed += 1
            self.progress.console.print(Text(tenant_line(result), style="red"))
        self.progress.update(self.task, advance=1, failed=self.failed)

    def finished(self, summary: Summary) -> None:
        self.progress.stop()
        for line in summary_lines(summary):
            self.console.print(line, markup=False, highlight=False)
