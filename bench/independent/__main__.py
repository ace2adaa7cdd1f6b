"""`python -m bench.independent`: Tenantry against the independent baseline (issue 17).

    python -m bench.independent --rounds 5 --before main --write       # the ratio table
    python -m bench.independent --tenants 1 --before main --write      # one tenant, no switches

The server is TENANTRY_DATABASE_URL's (or the embedded one); throwaway databases are made there
and dropped at the end. With pg_stat_statements preloaded on that server, `--db-work N` also
measures the database work per request of Tenantry and the baseline (N requests each).
"""

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from bench.independent.compare import (
    ensure_statements_extension,
    main_variants,
    run_comparison,
    source_tree,
)
from bench.independent.report import markdown
from bench.readme import write_section
from bench.request_path.measure import LoadShape
from tenancy.database import bootstrap_url
from tenancy.settings import TenancySettings

BENCH_DIR = Path(__file__).resolve().parent.parent
EDGE_FILES = ("tenancy/edge.py",)
"""The edge of this tree, for `--edge-alone`: main's code with only the edge changed."""
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    tenants: Annotated[int, typer.Option(help="Tenants of the Tenantry servers")] = 100,
    rounds: Annotated[int, typer.Option(help="Interleaved rounds per route")] = 5,
    duration: Annotated[float, typer.Option(help="Measured seconds per server and run")] = 2.0,
    warmup: Annotated[float, typer.Option(help="Unmeasured seconds before each run")] = 0.3,
    connections: Annotated[int, typer.Option(help="Keep-alive connections")] = 16,
    todos: Annotated[int, typer.Option(help="Todos per tenant (and in the baseline)")] = 30,
    before: Annotated[str, typer.Option(help="Also run Tenantry at this git ref")] = "",
    edge_alone: Annotated[
        bool, typer.Option(help="Also run --before with this tree's tenancy/edge.py")
    ] = False,
    db_work: Annotated[int, typer.Option(help="Requests of the pg_stat_statements run")] = 0,
    settle: Annotated[
        int, typer.Option(help="Unmeasured requests to each server before the rounds")
    ] = 20_000,
    write: Annotated[bool, typer.Option(help="Rewrite bench/README.md's section")] = False,
    out: Annotated[Path, typer.Option(help="Results (JSON)")] = BENCH_DIR / "results",
) -> None:
    shape = LoadShape(duration, warmup, connections, rounds, todos)
    server_url = asyncio.run(bootstrap_url(TenancySettings()))
    if db_work and not asyncio.run(ensure_statements_extension(server_url)):
        raise typer.BadParameter("--db-work needs pg_stat_statements in shared_preload_libraries")
    kind = "ratios" if tenants > 1 else "one_tenant"  # one tenant: no switches (own section)
    if before:
        with source_tree(before) as tree, source_tree(before, EDGE_FILES) as with_edge:
            variants = main_variants(tree, with_edge if edge_alone else None)
            results = asyncio.run(
                run_comparison(server_url, variants, tenants, shape, db_work, settle)
            )
        results["before"] = before
    else:
        variants = main_variants(None)
        results = asyncio.run(run_comparison(server_url, variants, tenants, shape, db_work, settle))
    results["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"independent_{kind}.json").write_text(json.dumps(results, indent=1, default=str))
    tables = markdown(results)
    typer.echo(tables)
    if write:
        marker = f"<!-- independent_{kind}"
        write_section(f"{marker}:start -->", f"{marker}:end -->", tables)


if __name__ == "__main__":
    app()
