"""One PNG per figure (matplotlib: `pip install -e '.[bench]'`; skipped when it is missing)."""

from pathlib import Path
from typing import Any

from bench.request_path.measure import ROUTES

PREFIX = "request_path"


def plot_all(results: dict[str, Any], folder: Path) -> list[Path]:
    """Write the figures the results allow; [] when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in (
        ("overhead", _overhead),
        ("tenants", _tenants),
        ("registry", _registry),
        ("memory", _memory),
    ):
        if name in results or (name == "registry" and "tenants" in results):
            path = folder / f"{PREFIX}_{name}.png"
            draw(results, path)
            written.append(path)
    return written


def _save(figure: Any, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(figure)


def _label(ax: Any, bars: Any, texts: list[str]) -> None:
    for bar, text in zip(bars, texts, strict=True):
        ax.annotate(
            text,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )


def _overhead(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    summary = results["overhead"]["summary"]
    figure, _ = plt.subplots(1, len(summary), figsize=(5.5 * len(summary), 4))
    for ax, (route, variants) in zip(figure.axes, summary.items(), strict=True):
        names = list(variants)
        bars = ax.bar(names, [variants[n]["throughput"] for n in names], color="#4c72b0")
        _label(
            ax,
            bars,
            [f"x{variants[n]['ratio']:.3f}\np99 {variants[n]['p99_ms']:.1f} ms" for n in names],
        )
        ax.set_title(f"GET {ROUTES[route]}: throughput (x no tenancy)")
        ax.set_ylabel("requests/s (median of rounds)")
        ax.tick_params(axis="x", labelsize=8)
        ax.margins(y=0.25)
    _save(figure, path)


def _tenants(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    summary = results["tenants"]["summary"]
    sizes = [int(size) for size in summary]
    figure, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
        ax.plot(sizes, [s[key] for s in summary.values()], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("tenants (requests spread uniformly)")
    ax.set_ylabel("latency ms (median of rounds)")
    ax.set_ylim(bottom=0)
    ax.set_title("Latency against tenant count")
    ax.legend()
    _save(figure, path)


def _registry(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(6, 4))
    for size, samples in results["tenants"]["registry"].items():
        ax.plot(
            [0] + [s["requests"] for s in samples],
            [0] + [s["queries"] for s in samples],
            marker="o",
            label=f"{size} tenants",
        )
    ax.set_xlabel("requests served (start, after the warm-up, after each round)")
    ax.set_ylabel("registry queries so far")
    ax.set_yscale("symlog")
    ax.set_title("Registry queries: one per tenant, then none")
    ax.legend()
    _save(figure, path)


def _memory(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    memory = results["memory"]
    figure, (growth, policy) = plt.subplots(1, 2, figsize=(11, 4))
    touched = [p["tenants_touched"] for p in memory["growth"]]
    for key, label in (
        ("contexts_mib", "memory contexts"),
        ("cache_contexts_mib", "of which catalog caches"),
        ("rss_anon_mib", "RssAnon (private RSS)"),
    ):
        values = [p[key] for p in memory["growth"]]
        if None not in values:
            growth.plot(touched, values, marker="o", label=label)
    growth.set_xlabel("tenant schemas touched by one connection")
    growth.set_ylabel("MiB")
    growth.set_title("One backend's memory")
    growth.legend()
    policies = memory["policies"]
    labels = [str(p["pool_max_uses"] or "never") for p in policies]
    peaks = [p["peak_backend_rss_anon_mib"] or 0 for p in policies]
    bars = policy.bar(labels, peaks, color="#55a868")
    _label(policy, bars, [f"{p['transactions_per_second']:.0f} tx/s" for p in policies])
    policy.set_xlabel("pool_max_uses (checkouts before a connection is replaced)")
    policy.set_ylabel("peak RssAnon of a backend, MiB")
    policy.set_title(
        f"Pool of {policies[0]['pool_size']}, uniform over {memory['tenants']} tenants"
    )
    policy.margins(y=0.15)
    _save(figure, path)
