"""`python -m bench.request_path`: run the request-path benchmarks and write their numbers.

The server is TENANTRY_DATABASE_URL's (or the embedded one); the benchmark makes its own
throwaway databases there and drops them at the end.
"""

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from bench.request_path.plots import plot_all
from bench.request_path.report import markdown
from bench.request_path.suite import BENCHMARKS, BenchOptions, run_suite
from tenancy.database import bootstrap_url
from tenancy.settings import TenancySettings

BENCH_DIR = Path(__file__).resolve().parent.parent

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


@app.command()
def main(
    overhead_tenants: Annotated[int, typer.Option(help="Tenants behind the overhead runs")] = 100,
    sizes: Annotated[str, typer.Option(help="Tenant counts to compare")] = "10,1000,10000",
    rounds: Annotated[int, typer.Option(help="Interleaved rounds per benchmark")] = 8,
    duration: Annotated[float, typer.Option(help="Measured seconds per run")] = 2.0,
    warmup: Annotated[float, typer.Option(help="Unmeasured seconds before each run")] = 0.3,
    connections: Annotated[int, typer.Option(help="Concurrent keep-alive connections")] = 8,
    todos: Annotated[int, typer.Option(help="Todos per tenant")] = 30,
    memory_tenants: Annotated[int, typer.Option(help="0: the largest size")] = 0,
    memory_checkpoints: Annotated[int, typer.Option(help="Points of the memory growth curve")] = 10,
    memory_pool: Annotated[int, typer.Option(help="Pool size of the policy runs")] = 4,
    memory_transactions: Annotated[int, typer.Option(help="Transactions per policy")] = 20000,
    max_uses: Annotated[
        str, typer.Option(help="pool_max_uses values, 0 = never")
    ] = "0,5000,1000,250",
    reconnect_transactions: Annotated[
        int, typer.Option(help="Transactions per arm of the reconnect cost")
    ] = 200,
    only: Annotated[str, typer.Option(help="Comma-separated subset")] = ",".join(BENCHMARKS),
    out: Annotated[Path, typer.Option(help="Results (JSON, markdown)")] = BENCH_DIR / "results",
    figures: Annotated[Path, typer.Option(help="PNG figures")] = BENCH_DIR / "figures",
) -> None:
    options = BenchOptions(
        overhead_tenants=overhead_tenants,
        sizes=_ints(sizes),
        rounds=rounds,
        duration=duration,
        warmup=warmup,
        connections=connections,
        todos=todos,
        memory_tenants=memory_tenants or None,
        memory_checkpoints=memory_checkpoints,
        memory_pool=memory_pool,
        memory_transactions=memory_transactions,
        max_uses=_ints(max_uses),
        reconnect_transactions=reconnect_transactions,
        only=[name for name in only.split(",") if name],
    )
    unknown = set(options.only) - set(BENCHMARKS)
    if unknown:
        raise typer.BadParameter(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    server_url = asyncio.run(bootstrap_url(TenancySettings()))
    results = asyncio.run(run_suite(server_url, options))
    out.mkdir(parents=True, exist_ok=True)
    (out / "request_path.json").write_text(json.dumps(results, indent=1, default=str))
    tables = markdown(results)
    (out / "request_path.md").write_text(tables)
    typer.echo(tables)
    for path in plot_all(results, figures):
        typer.echo(f"figure: {path}")


if __name__ == "__main__":
    app()
