"""``--plot FILE.png``: boots over time and the latency distribution of a fleet run (issue #6).

matplotlib is the optional extra ``phoneemu[plot]``; it is imported only when a plot is asked for
and its absence is one clear error (:class:`~phoneemu.errors.PhoneEmuError`), never a traceback.
Two panels: (1) boots finished in each second (bars; the last, partial second ends at the last boot)
and the cumulative count from zero (line) against seconds since the start;
(2) a histogram of boot latencies in milliseconds with p50/p99 marked.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from phoneemu.errors import PhoneEmuError
from phoneemu.files import write_output
from phoneemu.fleet.metrics import FleetMetrics, percentile

__all__ = ["check_plot_path", "plot_metrics", "require_matplotlib"]

_MISSING = "--plot needs matplotlib: pip install 'phoneemu[plot]'"


def require_matplotlib() -> Any:
    """The ``matplotlib.pyplot`` module with a non-interactive backend, or PhoneEmuError."""
    try:
        import matplotlib
    except ImportError:
        raise PhoneEmuError(_MISSING) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_plot_path(path: Path | str) -> None:
    """Refuse, before a run, a ``--plot`` file whose suffix matplotlib cannot write (e.g. ``x.txt``);
    no suffix means PNG."""
    require_matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = Path(path).suffix.lower().lstrip(".")
    known = FigureCanvasBase.get_supported_filetypes()
    if suffix and suffix not in known:
        raise PhoneEmuError(f"--plot {path}: cannot draw a .{suffix} file (use one of: "
                            f"{', '.join(sorted(known))})", path="plot")


def bucket_for(span_s: float) -> float:
    """The time bucket of the rate bars: one second, or less for a storm shorter than 50 s so that it
    still has at most about 50 bars and more than one (a 0.16 s storm drew a single bar)."""
    return next((b for b in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5) if span_s / b <= 50), 1.0)


def plot_metrics(metrics: FleetMetrics, path: Path | str, *, title: str = "phoneemu fleet") -> Path:
    """Write the two-panel figure to ``path`` (its suffix names the format; none: ``path.png``)
    atomically; returns the path written."""
    plt = require_matplotlib()
    path = Path(path)
    end = max(metrics.end_times, default=0.0)
    bucket = bucket_for(end)
    series = metrics.rate_series(bucket)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    try:
        # bars: the rate in each bucket; the last bucket is usually partial: its bar ends at the last boot
        xs = [i * bucket for i in range(len(series))]
        widths = [max(bucket * 0.05, min(bucket, end - x)) for x in xs]
        ax1.bar(xs, [v / bucket for v in series], width=widths, align="edge", color="tab:blue", alpha=0.6,
                label="boots/s")
        ax1.set_xlabel("seconds since start")
        ax1.set_ylabel("boots/s, in each second" if bucket >= 1.0 else f"boots/s, in each {bucket:g} s")
        cum = ax1.twinx()
        ends = sorted(metrics.end_times)  # the cumulative count itself, a step per boot (thinned)
        step = max(1, len(ends) // 2000)
        cx = [0.0, *ends[step - 1::step], *ends[-1:]]
        cy = [0, *range(step, len(ends) + 1, step), *([len(ends)] if ends else [])]
        cum.step(cx, cy, where="post", color="tab:green", label="cumulative")
        ax1.set_ylim(bottom=0)
        cum.set_ylim(bottom=0)  # both axes start at zero, side by side
        cum.set_ylabel("boots finished (cumulative)")
        ax1.set_title(f"{metrics.booted} booted, {metrics.failed} failed, {metrics.rate():,.0f} boots/s")
        lat_ms = sorted(v * 1000.0 for v in metrics.latencies)
        if lat_ms:
            ax2.hist(lat_ms, bins=min(100, max(10, len(lat_ms) // 50)), color="tab:orange")
            for q, style in ((50.0, "--"), (99.0, ":")):
                mark = percentile(lat_ms, q)
                if mark is not None:
                    ax2.axvline(mark, color="black", linestyle=style, label=f"p{q:.0f} {mark:.1f} ms")
            ax2.legend()
        ax2.set_xlabel("boot latency (ms)")
        ax2.set_ylabel("phones")
        ax2.set_title("latency distribution")
        fig.suptitle(title)
        fig.tight_layout()
        if not path.suffix:  # as matplotlib names it: FILE.png
            path = path.with_name(path.name + ".png")
        buf = io.BytesIO()  # drawn in memory, then written whole (files.write_output: atomic)
        fig.savefig(buf, dpi=100, format=path.suffix.lower().lstrip("."))
        write_output(path, buf.getvalue())
    finally:
        plt.close(fig)
    return path
