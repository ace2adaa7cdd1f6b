"""The fleet results as markdown tables, a figure, and the section of bench/README.md."""

import math
from pathlib import Path
from typing import Any

from bench.readme import write_section

START, END = "<!-- fleet:start -->", "<!-- fleet:end -->"
FIGURE = "fleet.png"


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def _size(value: int) -> str:
    return f"{value / 1024**3:,.1f} GiB" if value >= 1024**3 else f"{value / 1024**2:,.0f} MiB"


def tables(results: dict[str, Any]) -> str:
    points = results["points"]
    head = (
        f"Measured {results['measured']}, PostgreSQL {results['server']}, {results['cores']} cores,"
        f" load average (1 min) {results['load_before']:.1f} before and"
        f" {results['load_after']:.1f} after; onboarding {results['concurrency']} at once;"
        f" the app's pool: {results['pool']}."
    )
    ops = [
        "| tenants | onboarding /s at N | create_tenant p50 / p99 ms | no-op migrate: engine"
        " / command | add-column revision over all | `migrate status` command |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    catalog = [
        "| tenants | `pg_class` rows | `pg_attribute` rows | catalog size | database size |"
        " per tenant |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    catalog[0] = catalog[0].replace("per tenant", "database growth per tenant")
    serving = [
        "| tenants | first visit p50 / p99 ms | req/s | p50 / p99 ms | app CPU µs/req |"
        " backends seen | peak RssAnon: one backend / all, MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    previous = results.get("empty") and {"tenants": 0, **results["empty"]}
    for p in points:
        n = p["tenants"]
        grown = previous and (p["database_bytes"] - previous["database_bytes"]) / (
            n - previous["tenants"]
        )
        previous = p
        ops.append(
            f"| {n:,} | {_num(p['onboard_per_s_at_n'])} | {_num(p['create_p50_ms'], 1)} /"
            f" {_num(p['create_p99_ms'], 1)} | {p['noop_engine_s']:.2f} s /"
            f" {p['noop_command_s']:.2f} s | {p['add_column_s']:,.1f} s"
            f" ({p['add_column_per_s']:,.0f}/s) | {p['status_command_s']:.2f} s |"
        )
        catalog.append(
            f"| {n:,} | {p['pg_class_rows']:,} | {p['pg_attribute_rows']:,} |"
            f" {_size(p['catalog_bytes'])} | {_size(p['database_bytes'])} |"
            f" {_num(grown and grown / 1024)} KiB |"
        )
        serving.append(
            f"| {n:,} | {_num(p['first_visit_p50_ms'], 1)} / {_num(p['first_visit_p99_ms'], 1)} |"
            f" {_num(p['requests_per_s'])} | {_num(p['request_p50_ms'], 1)} /"
            f" {_num(p['request_p99_ms'], 1)} | {_num(p['app_cpu_us'])} | {p['backends_seen']} |"
            f" {_num(p['backend_rss_anon_peak_mib'], 1)} /"
            f" {_num(p['backends_rss_anon_peak_total_mib'], 0)} |"
        )
    return "\n\n".join([head, "\n".join(ops), "\n".join(catalog), "\n".join(serving)])


def plot(results: dict[str, Any], path: Path) -> Path | None:
    """Six panels against the tenant count (log scale); what grows with it is drawn log-log, so
    growth in proportion to the tenants is a slope of one. None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = results["points"]
    n = [p["tenants"] for p in points]
    panels = [
        ("onboarding, tenants/s", [("at N", "onboard_per_s_at_n")]),
        (
            "migrate-all, seconds",
            [
                ("add-column", "add_column_s"),
                ("no-op", "noop_engine_s"),
                ("status cmd", "status_command_s"),
            ],
        ),
        (
            "catalog, rows (millions)",
            [("pg_class", "pg_class_rows"), ("pg_attribute", "pg_attribute_rows")],
        ),
        ("database size, GiB", [("database", "database_bytes"), ("catalog", "catalog_bytes")]),
        (
            "request latency, ms",
            [
                ("p50", "request_p50_ms"),
                ("p99", "request_p99_ms"),
                ("first visit p99", "first_visit_p99_ms"),
            ],
        ),
        (
            "backend RssAnon peak, MiB",
            [
                ("one backend", "backend_rss_anon_peak_mib"),
                ("all", "backends_rss_anon_peak_total_mib"),
            ],
        ),
    ]
    scale = {
        "pg_class_rows": 1e-6,
        "pg_attribute_rows": 1e-6,
        "database_bytes": 1 / 1024**3,
        "catalog_bytes": 1 / 1024**3,
    }
    log_log = {"migrate-all, seconds", "catalog, rows (millions)", "database size, GiB"}
    figure, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (title, series) in zip(axes.flat, panels, strict=True):
        for label, key in series:
            ys = [(p[key] or math.nan) * scale.get(key, 1) for p in points]
            ax.plot(n, ys, marker="o", label=label)
        ax.set_xscale("log")
        if title in log_log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_title(title + (" (log)" if title in log_log else ""))
        ax.set_xlabel("tenants")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle(f"One PostgreSQL {results['server']} server, {results['cores']} cores")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_readme(markdown: str) -> None:
    write_section(START, END, f"{markdown}\n\n![fleet](figures/{FIGURE})")
