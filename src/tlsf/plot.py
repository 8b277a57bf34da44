"""Pictures of heaps and replays (matplotlib: pip install 'tlsf[plot]').

    tlsf.plot.heap_map(heap, "heap.png")          # the layout, used and free
    tlsf.plot.latency(runs, "latency.png")        # percentiles, log scales
    tlsf.plot.replay_figure(runs, "replay.png")   # python -m tlsf replay --plot

Every function returns the matplotlib Figure and, given a path, saves it
there. Figures are made without pyplot, so that nothing here changes the
caller's backend or opens a window; in a notebook the returned figure shows
itself. The layout is aggregated into pixels (tlsf.heapmap.layout), so a map
of a million blocks draws in seconds and stays readable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tlsf.heapmap import Blocks, Summary, _bytes, layout, report, summary

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from tlsf.replay import Run

FREE_RGB = (0.80, 0.92, 0.77)  # light green
USED_RGB = (0.12, 0.31, 0.47)  # dark blue
OUTSIDE_RGB = (1.0, 1.0, 1.0)  # between pools, past the end


def heap_map(heap: Any, path: str | None = None, *, title: str | None = None,
             width: int = 1024, rows: int = 256, blocks: Blocks | None = None) -> Figure:
    """The layout of heap (anything with walk() and stats()): `rows` bands of
    `width` pixels over its address range, each pixel coloured by the share
    of its bytes in used blocks; the title gives the heap's figures and the
    legend its free bytes by size class."""
    from matplotlib.figure import Figure

    blocks = list(heap.walk()) if blocks is None else blocks
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    draw_map(fig.add_subplot(), blocks, summary(heap, blocks), width, rows)
    if title:
        fig.suptitle(title)
    return _saved(fig, path)


def draw_map(ax: Axes, blocks: Blocks, figures: Summary, width: int = 1024, rows: int = 256) -> None:
    """The heap map of blocks (walk()) on ax, titled with the heap's figures (see heap_map)."""
    import numpy as np  # matplotlib's own dependency
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    lay = layout(blocks, width * rows)
    inside, used = np.array(lay.in_heap)[:, None], np.array(lay.used)[:, None]
    free_rgb, used_rgb = np.array(FREE_RGB), np.array(USED_RGB)
    # Each pixel mixes its shares: not heap, free, used (inside = free + used shares).
    rgb = (1 - inside) * np.array(OUTSIDE_RGB) + (inside - used) * free_rgb + used * used_rgb
    ax.imshow(rgb.reshape(rows, width, 3).clip(0, 1), aspect="auto", interpolation="nearest",
              extent=(0, width * lay.cell, lay.start + rows * width * lay.cell, lay.start))
    in_bytes = FuncFormatter(lambda v, _: _bytes(int(v)))
    ax.xaxis.set_major_formatter(in_bytes)
    ax.yaxis.set_major_formatter(in_bytes)
    ax.set_xlabel(f"offset within the band (one pixel = {_bytes(lay.cell)})")
    ax.set_ylabel("band start (offset)")
    ax.set_title(str(figures), fontsize=9)
    free_classes = sorted((c for c in report(blocks) if c.free_blocks), key=lambda c: -c.free_bytes)
    handles = [Patch(color=USED_RGB, label=f"used: {_bytes(figures.used)}"),
               Patch(color=FREE_RGB, label=f"free: {_bytes(figures.free)}")]
    for c in free_classes[:8]:
        handles.append(Patch(color="none", label=f"free {_bytes(c.low)}..{_bytes(c.high)}: "
                                                 f"{c.free_blocks:,} blocks, {_bytes(c.free_bytes)}"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              title="free memory by size class", title_fontsize=8, frameon=False)


def latency(runs: Sequence[Run], path: str | None = None, *,
            native: Mapping[str, Mapping[str, int]] | None = None) -> Figure:
    """Each run's per-operation latency as percentiles on log scales (the
    x axis in nines: 90, 99, 99.9, 99.99), with the native bench's
    percentiles as points when given."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    draw_latency(fig.add_subplot(), runs, native or {})
    return _saved(fig, path)


def draw_latency(ax: Axes, runs: Sequence[Run], native: Mapping[str, Mapping[str, int]]) -> None:
    import math

    def nines(p: float) -> float:  # 50 -> 0.3, 90 -> 1, 99 -> 2, 99.99 -> 4
        return -math.log10(1 - min(p, 99.999) / 100)

    points = [50 + 50 * (1 - 10 ** -(k / 20)) for k in range(0, 101)]
    for r in runs:
        ax.plot([nines(p) for p in points], [max(1, r.percentile(p)) for p in points], label=r.allocator)
        ax.plot([nines(99.999)], [max(1, r.percentile(100))], "v", color=ax.lines[-1].get_color())
    for name, figures in native.items():
        xs = [nines(float(k[1:])) if k != "max" else nines(99.999) for k in figures]
        ax.plot(xs, [max(1, v) for v in figures.values()], "o--", label=name, alpha=0.7)
    ticks = [50, 90, 99, 99.9, 99.99]
    ax.set_xticks([nines(p) for p in ticks] + [nines(99.999)], [f"p{p:g}" for p in ticks] + ["max"])
    ax.set_yscale("log")
    ax.set_ylabel("ns per call (timer included)")
    ax.set_xlabel("percentile of operations")
    ax.set_title("latency distribution", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def draw_timeline(ax: Axes, runs: Sequence[Run]) -> None:
    """Live requested bytes and each run's high-water mark over the replay."""
    from matplotlib.ticker import EngFormatter

    if not runs:
        return
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ops, live, _ = zip(*runs[0].timeline)
    ax.plot(ops, [v / 2**20 for v in live], color="black", label="live requested bytes")
    for r in runs:
        ops, _, high = zip(*r.timeline)
        ax.plot(ops, [v / 2**20 for v in high], label=f"{r.allocator} high-water "
                                                       f"({r.high_water / max(1, r.peak_live):.3f}x peak)")
    ax.axvline(runs[0].peak_at, color="grey", linestyle=":", label="peak of live bytes")
    ax.set_xlabel("operations")
    ax.set_ylabel("MiB")
    ax.set_title("live bytes and high-water mark over time", fontsize=10)
    ax.legend(fontsize=8)


def replay_figure(runs: Sequence[Run], path: str | None = None, *, title: str = "",
                  native: Mapping[str, Mapping[str, int]] | None = None) -> Figure:
    """python -m tlsf replay --plot: the timeline and the latency
    distribution above, the heap map of the first run that has one (at the
    peak of live bytes) below."""
    from matplotlib.figure import Figure

    mapped = next((r for r in runs if r.figures is not None), None)
    fig = Figure(figsize=(14, 10 if mapped else 5), layout="constrained")
    grid = fig.add_gridspec(2 if mapped else 1, 2)
    draw_timeline(fig.add_subplot(grid[0, 0]), runs)
    draw_latency(fig.add_subplot(grid[0, 1]), runs, native or {})
    if mapped is not None and mapped.blocks is not None and mapped.figures is not None:
        ax = fig.add_subplot(grid[1, :])
        draw_map(ax, mapped.blocks, mapped.figures)
        ax.set_title(f"{mapped.allocator} at the peak of live bytes (operation {mapped.peak_at:,}): "
                     f"{ax.get_title()}", fontsize=9)
    if title:
        fig.suptitle(title)
    return _saved(fig, path)


def _saved(fig: Figure, path: str | None) -> Figure:
    if path:
        fig.savefig(path, dpi=100)
    return fig


__all__ = ["draw_latency", "draw_map", "draw_timeline", "heap_map", "latency", "replay_figure"]
