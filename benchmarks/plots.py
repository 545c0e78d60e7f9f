"""PNG plots of the benchmarks' JSON (matplotlib, headless Agg): where a table reads worse.

- ``plot_serve``: ``serve.json`` → ``serve-throughput.png`` (sentences/s against concurrent
  single-sentence clients, sentsim and infinity-emb, the offline rate of the same precision as a
  dashed line) and ``serve-latency.png`` (p50 and p99 against clients).
- ``plot_encode``: ``encode.json`` → ``encode-throughput.png`` (sentences/s per contender).

Both scripts call these with ``--plot DIR`` after a run, and replot a saved JSON with
``--replot JSON --plot DIR`` without running anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SERVERS = (("sentsim", "tab:blue"), ("infinity", "tab:orange"))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _single_sentence_levels(result: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """``(clients, row)`` for the ``Cx1`` levels, by clients."""
    levels = []
    for row in result["levels"]:
        clients, per_request = (int(x) for x in row["level"].split("x"))
        if per_request == 1:
            levels.append((clients, row))
    return sorted(levels, key=lambda pair: pair[0])


def plot_serve(result: dict[str, Any], folder: Path) -> list[Path]:
    """Throughput and latency against clients from ``benchmarks/serve.py``'s JSON.

    Args:
        result: The JSON's content (``levels``: ``{"level": "CxN", "sentsim": {...},
            "infinity": {...}?}``, ``offline_sentences_per_s``, ``precision``).
        folder: Created if missing.

    Returns:
        The two PNGs written.

    Raises:
        ValueError: No single-sentence level to plot.
    """
    levels = _single_sentence_levels(result)
    if not levels:
        raise ValueError("no single-sentence (Cx1) level in the result")
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    clients = [c for c, _ in levels]
    servers = [(name, colour) for name, colour in SERVERS if name in levels[0][1]]

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, colour in servers:
        rates = [row[name]["sentences_per_s"] for _, row in levels]
        ax.plot(clients, rates, "o-", color=colour, label=name)
    offline = result["offline_sentences_per_s"].get(result["precision"])
    if offline:
        ax.axhline(offline, ls="--", color="gray", lw=1)
        ax.annotate(
            f"offline {result['precision']}, batch 32 sorted",
            (clients[0], offline),
            textcoords="offset points",
            xytext=(2, -12),
            fontsize=8,
            color="gray",
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(clients, [str(c) for c in clients])
    ax.set_xlabel("concurrent clients (one sentence a request)")
    ax.set_ylabel("sentences / s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Throughput over HTTP ({result.get('cpus', '?')} cores)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    throughput = folder / "serve-throughput.png"
    fig.savefig(throughput)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, colour in servers:
        for key, style in (("p50_ms", "o-"), ("p99_ms", "s--")):
            values = [row[name][key] for _, row in levels]
            ax.plot(clients, values, style, color=colour, label=f"{name} {key[:3]}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(clients, [str(c) for c in clients])
    ax.set_xlabel("concurrent clients (one sentence a request)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency over HTTP", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    latency = folder / "serve-latency.png"
    fig.savefig(latency)
    plt.close(fig)
    return [throughput, latency]


def plot_encode(result: dict[str, Any], folder: Path) -> list[Path]:
    """Sentences/s per contender from ``benchmarks/encode.py``'s JSON (``rows``).

    Returns:
        The PNG written.
    """
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    rows = result["rows"]
    names = [r["contender"] for r in rows]
    rates = [r["sentences_per_s"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(rows) + 1.2), dpi=100)
    bars = ax.barh(
        names, rates, color=["tab:gray" if "sentence-" in n else "tab:blue" for n in names]
    )
    ax.bar_label(bars, fmt="%.0f", fontsize=8, padding=2)
    ax.invert_yaxis()
    ax.set_xlabel("sentences / s")
    ax.set_title(
        f"Offline encoding, batch {result['batch_size']}, {result['threads']} threads", fontsize=10
    )
    fig.tight_layout()
    path = folder / "encode-throughput.png"
    fig.savefig(path)
    plt.close(fig)
    return [path]
