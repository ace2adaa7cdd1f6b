"""One server with thousands to 100,000 tenants, measured as the fleet grows.

    python -m bench.fleet --tenants 100000 --write     # about half an hour here
    python -m bench.fleet --tenants 2000 --checkpoints 500

One fleet grows in one database (8 real onboardings at once) and is measured at each checkpoint
and at `--tenants`: onboarding rate, `tenantry migrate status`, a no-op `tenantry migrate`, one
add-column revision over every tenant, catalog size, requests through the API over uniformly
drawn tenants, and backend memory under the default pool policy. How each is measured:
bench/README.md ("Fleet"). `--write` rewrites that section, the figure and bench/fleet.json
(the capacity model's inputs).
"""

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from bench.fleet_bench.report import FIGURE, plot, tables, write_readme
from bench.fleet_bench.run import run
from bench.request_path.measure import LoadShape
from service.paths import PROJECT_ROOT

BENCH = PROJECT_ROOT / "bench"
MEASURED = BENCH / "fleet.json"
"""The committed results (`--write`): the capacity model's inputs."""

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    tenants: Annotated[int, typer.Option(help="The largest fleet")] = 100_000,
    checkpoints: Annotated[str, typer.Option(help="Sizes measured below --tenants")] = "1000,10000",
    concurrency: Annotated[int, typer.Option(help="Onboardings at once")] = 8,
    duration: Annotated[float, typer.Option(help="Measured seconds of uniform load")] = 20.0,
    warmup: Annotated[float, typer.Option(help="Unmeasured seconds before the load")] = 1.0,
    connections: Annotated[int, typer.Option(help="Load generator connections")] = 8,
    database: Annotated[
        str | None, typer.Option(help="Keep the fleet in this database (grown, not dropped)")
    ] = None,
    write: Annotated[
        bool, typer.Option(help="Write bench/README.md's section, the figure, bench/fleet.json")
    ] = False,
    out: Annotated[Path, typer.Option(help="Results (fleet.json, every run) and key files")] = BENCH
    / "results",
) -> None:
    sizes = sorted({int(s) for s in checkpoints.split(",") if s.strip() and int(s) < tenants})
    sizes.append(tenants)
    shape = LoadShape(duration=duration, warmup=warmup, connections=connections, rounds=1, todos=1)
    out.mkdir(parents=True, exist_ok=True)
    results = asyncio.run(run(sizes, database, concurrency, shape, out))
    (out / "fleet.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = tables(results)
    print("\n" + markdown)
    if write and results["points"]:
        plot(results, BENCH / "figures" / FIGURE)
        write_readme(markdown)
        MEASURED.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    os.chdir(PROJECT_ROOT)
    app()
