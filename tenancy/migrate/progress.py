"""How a run reports: a Rich progress bar on a terminal, plain lines in a log, JSON lines for
machines (one record per tenant, then the totals)."""

import json
from typing import Protocol, TextIO

from tenancy.migrate.results import Outcome, Summary, TenantResult


class Reporter(Protocol):
    def shared(self, from_rev: str | None, to_rev: str | None) -> None: ...

    def planned(self, pending: int) -> None:
        """`pending` more tenants will be worked on (called once per planning pass)."""

    def tenant(self, result: TenantResult) -> None: ...

    def finished(self, summary: Summary) -> None: ...


def reporter_for(stream: TextIO, *, as_json: bool = False) -> Reporter:
    if as_json:
        return JsonReporter(stream)
    if stream.isatty():  # Rich only then: a log or a pipe never pays for importing it
        from rich.console import Console

        from tenancy.migrate.progress_rich import RichReporter

        return RichReporter(Console(file=stream))
    return PlainReporter(stream)


def summary_lines(summary: Summary) -> list[str]:
    migrated = summary.count(Outcome.MIGRATED)
    # The rate only when something was migrated: "(0 tenants/s)" on a no-op run reads like a fault.
    rate = f" ({migrated / summary.seconds:.0f} tenants/s)" if migrated and summary.seconds else ""
    lines = [
        f"migrated {migrated}, "
        f"already current {summary.count(Outcome.CURRENT)}, "
        f"failed {summary.count(Outcome.FAILED)}, "
        f"skipped {summary.count(Outcome.SKIPPED)}"
        + (f", missing {len(summary.missing)}" if summary.missing else "")
        + f" in {summary.seconds:.2f} s{rate}"
    ]
    lines += [f"  failed {r.tenant.slug}: {r.error}" for r in summary.failures]
    lines += [f"  missing {r.tenant.slug}: {r.error}" for r in summary.missing]
    return lines


def shared_line(from_rev: str | None, to_rev: str | None) -> str:
    if from_rev == to_rev:
        return f"shared schema at {to_rev} (current)"
    return f"shared schema migrated {from_rev or 'base'} -> {to_rev}"


def tenant_line(result: TenantResult) -> str:
    move = f"{result.from_rev or 'base'} -> {result.to_rev or 'base'}"
    if result.outcome is Outcome.FAILED and not result.attempts:
        move = f"at {result.from_rev or 'base'}"  # could not even be planned
    if result.outcome is Outcome.FAILED:
        return f"failed {result.tenant.slug} {move}: {result.error}"
    if result.outcome is Outcome.MISSING:
        return f"missing {result.tenant.slug}: {result.error}"
    return f"{result.outcome} {result.tenant.slug} {move} ({result.seconds * 1000:.1f} ms)"


class PlainReporter:
    """One line per tenant worked on; tenants already current only show in the summary."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def shared(self, from_rev: str | None, to_rev: str | None) -> None:
        print(shared_line(from_rev, to_rev), file=self.stream, flush=True)

    def planned(self, pending: int) -> None:
        if pending:
            print(f"{pending} tenant(s) to migrate", file=self.stream, flush=True)

    def tenant(self, result: TenantResult) -> None:
        if result.outcome is not Outcome.CURRENT:
            print(tenant_line(result), file=self.stream, flush=True)

    def finished(self, summary: Summary) -> None:
        print("\n".join(summary_lines(summary)), file=self.stream, flush=True)


class JsonReporter:
    """JSON lines: one record per tenant (current ones too), then one with the totals."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def shared(self, from_rev: str | None, to_rev: str | None) -> None:
        pass  # part of the totals record

    def planned(self, pending: int) -> None:
        pass

    def tenant(self, result: TenantResult) -> None:
        self.stream.write(json.dumps(result.record()) + "\n")
        self.stream.flush()

    def finished(self, summary: Summary) -> None:
        self.stream.write(json.dumps({"totals": summary.totals()}) + "\n")
        self.stream.flush()
