"""The results as markdown tables, for bench/README.md's "Request path" section."""

from typing import Any


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"
    return "-" if value is None else str(value)


def overhead_table(overhead: dict[str, Any]) -> str:
    rows = [
        [
            route,
            variant,
            s["throughput"],
            f"{s['ratio']:.3f}",
            f"{s['ratio_min']:.2f}-{s['ratio_max']:.2f}",
            s["p50_ms"],
            s["p99_ms"],
            s["server_cpu_us"],
        ]
        for route, variants in overhead["summary"].items()
        for variant, s in variants.items()
    ]
    header = ["route", "variant", "req/s", "x no tenancy", "range over rounds"]
    header += ["p50 ms", "p99 ms", "app CPU µs/req"]
    return _table(header, rows)


def tenants_table(tenants: dict[str, Any]) -> str:
    summary, setup = tenants["summary"], tenants["setup_seconds"]
    rows = [
        [
            size,
            setup[size],
            s["throughput"],
            s["p50_ms"],
            s["p99_ms"],
            f"{s['p99_ratio']:.2f}",
            f"{s['p99_ratio_max']:.2f}",
            s["server_cpu_us"],
        ]
        for size, s in summary.items()
    ]
    smallest = tenants["sizes"][0]
    header = ["tenants", "setup s", "req/s", "p50 ms", "p99 ms", f"p99 ÷ p99({smallest})"]
    return _table([*header, "worst round", "app CPU µs/req"], rows)


def registry_table(results: dict[str, Any]) -> str:
    rows = []
    if "overhead" in results:
        r = results["overhead"]["registry"]
        rows.append(
            [
                "overhead (tenantry)",
                results["overhead"]["tenants"],
                r["requests"],
                r["queries_during_warm_up"],
                r["queries_during_measurement"],
            ]
        )
    for size, samples in results.get("tenants", {}).get("registry", {}).items():
        warm, last = samples[0], samples[-1]
        rows.append(
            [
                "tenant count",
                size,
                last["requests"] - warm["requests"],
                warm["queries"],
                last["queries"] - warm["queries"],
            ]
        )
    header = ["benchmark", "tenants", "requests measured", "registry queries: warm-up"]
    return _table([*header, "registry queries: measured"], rows)


def memory_tables(memory: dict[str, Any]) -> str:
    growth = _table(
        ["tenants touched", "memory contexts MiB", "of which caches MiB", "RSS MiB", "RssAnon MiB"],
        [
            [
                p["tenants_touched"],
                p["contexts_mib"],
                p["cache_contexts_mib"],
                p["rss_mib"],
                p["rss_anon_mib"],
            ]
            for p in memory["growth"]
        ],
    )
    policies = _table(
        [
            "pool_max_uses",
            "transactions/s",
            "backends used",
            "peak backend RssAnon MiB",
            "peak pool RssAnon MiB",
        ],
        [
            [
                p["pool_max_uses"] or "0 (never)",
                p["transactions_per_second"],
                p["backends_seen"],
                p["peak_backend_rss_anon_mib"],
                p["peak_pool_rss_anon_mib"],
            ]
            for p in memory["policies"]
        ],
    )
    slopes = (
        f"Per tenant schema touched: memory contexts +{memory['contexts_kib_per_tenant']:.1f} KiB"
    )
    if memory["rss_anon_kib_per_tenant"] is not None:
        slopes += f", RssAnon +{memory['rss_anon_kib_per_tenant']:.1f} KiB"
    reconnect = f"replacing a connection adds {memory['reconnect_ms']:.2f} ms to one transaction."
    return f"{growth}\n\n{slopes}; {reconnect}\n\n{policies}"


def markdown(results: dict[str, Any]) -> str:
    parts = []
    if "overhead" in results:
        parts += ["### Overhead", overhead_table(results["overhead"])]
    if "tenants" in results:
        parts += ["### Tenant count", tenants_table(results["tenants"])]
    if "overhead" in results or "tenants" in results:
        parts += ["### Registry lookups", registry_table(results)]
    if "memory" in results:
        parts += ["### Backend memory", memory_tables(results["memory"])]
    return "\n\n".join(parts) + "\n"
