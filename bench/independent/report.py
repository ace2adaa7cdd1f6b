"""The comparison's results as markdown tables (bench/README.md, "Tenantry against an
independent FastAPI app")."""

from typing import Any

from bench.independent.compare import BASELINE


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def ratio_table(results: dict[str, Any]) -> str:
    header = ["route", "server", "req/s", "x baseline", "range over rounds", "p50 ms", "p99 ms"]
    header.append("app CPU µs/req")
    rows = []
    for route, variants in results["summary"].items():
        for variant, s in variants.items():
            ratio = "1" if variant == BASELINE else f"**{s['ratio']:.2f}**"
            spread = "" if variant == BASELINE else f"{s['ratio_min']:.2f}-{s['ratio_max']:.2f}"
            rows.append(
                [
                    f"`{route}`",
                    variant,
                    f"{s['throughput']:.0f}",
                    ratio,
                    spread,
                    f"{s['p50_ms']:.1f}",
                    f"{s['p99_ms']:.1f}",
                    f"{s['server_cpu_us']:.0f}",
                ]
            )
    return _table(header, rows)


def db_cpu_table(results: dict[str, Any]) -> str:
    header = ["server", "requests", "app CPU µs/req", "DB CPU µs/req (whole server)"]
    rows = [
        [name, str(w["requests"]), f"{w['app_cpu_us']:.0f}", f"{w['db_cpu_us']:.0f}"]
        for name, w in results["db_work"].items()
    ]
    return _table(header, rows)


def db_work_table(results: dict[str, Any]) -> str:
    header = ["server", "statement", "texts", "calls/req", "plans/req", "plan µs/req"]
    header.append("exec µs/req")
    rows = [
        [
            name,
            f"`{s['query'].replace('|', '/')}`",
            str(s["texts"]),
            f"{s['calls']:.2f}",
            f"{s['plans']:.3f}",
            f"{s['plan_us']:.1f}",
            f"{s['exec_us']:.1f}",
        ]
        for name, work in results["db_work"].items()
        for s in work["statements"]
        if s["calls"] >= 0.01
    ]
    return _table(header, rows)


def markdown(results: dict[str, Any]) -> str:
    before, after = results["load_average"]
    shape = results["shape"]
    tenants = f"{results['tenants']} tenant" + ("s" if results["tenants"] != 1 else "")
    intro = (
        f"Measured {results['measured_at']}, {results['cpus']} cores, load average (1 min) "
        f"{before:.1f} before and {after:.1f} after the run; {tenants}, "
        f"{shape['rounds']} rounds, {shape['connections']} connections, "
        f"{shape['duration']:.0f} s per server and run."
    )
    parts = [intro, "", ratio_table(results)]
    if results.get("db_work"):
        parts += ["", db_cpu_table(results), "", db_work_table(results)]
    return "\n".join(parts)
