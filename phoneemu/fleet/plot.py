"""``--plot FILE.png``: boots over time and the latency distribution of a fleet run (issue #6).

matplotlib is the optional extra ``phoneemu[plot]``; it is imported only when a plot is asked for
and its absence is one clear error (:class:`~phoneemu.errors.PhoneEmuError`), never a traceback.
Two panels: (1) boots finished in each second (bars; the last, partial second ends at the last boot)
and the cumulative count from zero (line) against seconds since the start;
(2) a histogram of boot latencies in milliseconds with p50/p99 marked.
The first panel's title says the rate as the summary and the JSON do: boots finished (booted or failed) per
second, the one value :meth:`~phoneemu.fleet.metrics.FleetMetrics.rate_shown` rounded once (was rounded
again here: 77 beside the text's 78 and the JSON's 77.5). The figure's title is the caller's (``fleet boot``:
the phones asked for, and how many were not started and why).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from phoneemu.errors import PhoneEmuError
from phoneemu.files import write_output
from phoneemu.fleet.metrics import FleetMetrics, percentile, rate_text

__all__ = ["check_plot_path", "plot_metrics", "plot_path", "require_matplotlib"]

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


def plot_path(path: Path | str) -> Path:
    """The file a plot asked for as ``path`` is written to: ``path`` itself, or ``path.png`` when it has no
    suffix (as matplotlib names it), so that another output naming ``path.png`` is seen to clash."""
    path = Path(path)
    return path if path.suffix else path.with_name(path.name + ".png")


def check_plot_path(path: Path | str) -> None:
    """Refuse, before a run, a ``--plot`` file whose suffix matplotlib cannot write (e.g. ``x.txt``), or
    cannot write here: a small figure with text is drawn in that format, in memory (``.pgf`` needs a TeX
    system; without one it failed with a traceback after the storm). No suffix means PNG."""
    plt = require_matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = plot_path(path).suffix.lower().lstrip(".")
    known = FigureCanvasBase.get_supported_filetypes()
    if suffix not in known:
        raise PhoneEmuError(f"--plot {path}: cannot draw a .{suffix} file (use one of: "
                            f"{', '.join(sorted(known))})", path="plot")
    fig = plt.figure(figsize=(1, 1))
    try:
        fig.text(0.5, 0.5, "1 ms")
        _draw(fig, suffix)
    except PhoneEmuError as exc:
        raise PhoneEmuError(f"--plot {path}: {exc.message}", path="plot") from None
    finally:
        plt.close(fig)


def _draw(fig: Any, suffix: str) -> bytes:
    """``fig`` drawn as a ``suffix`` file, in memory; matplotlib failing to draw it (a missing TeX for
    ``.pgf``, a missing image library: nothing is written yet) is a PhoneEmuError saying why."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, dpi=100, format=suffix)
    except Exception as exc:  # matplotlib's errors have no common base (RuntimeError, OSError of a TeX run)
        raise PhoneEmuError(f"matplotlib cannot draw a .{suffix} file here: {type(exc).__name__}: {exc}",
                            path="plot") from None
    return buf.getvalue()


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
                label="boots finished/s")
        ax1.set_xlabel("seconds since start")
        ax1.set_ylabel("boots finished/s, in each second" if bucket >= 1.0 else
                       f"boots finished/s, in each {bucket:g} s")
        cum = ax1.twinx()
        ends = sorted(metrics.end_times)  # the cumulative count itself, a step per boot (thinned)
        step = max(1, len(ends) // 2000)
        cx = [0.0, *ends[step - 1::step], *ends[-1:]]
        cy = [0, *range(step, len(ends) + 1, step), *([len(ends)] if ends else [])]
        cum.step(cx, cy, where="post", color="tab:green", label="cumulative")
        ax1.set_ylim(bottom=0)
        cum.set_ylim(bottom=0)  # both axes start at zero, side by side
        cum.set_ylabel("boots finished (cumulative)")
        ax1.set_title(f"{metrics.booted} booted, {metrics.failed} failed, "
                      f"{rate_text(metrics.rate_shown())} boots finished/s")
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
        path = plot_path(path)  # drawn in memory, then written whole (files.write_output: atomic)
        write_output(path, _draw(fig, path.suffix.lower().lstrip(".")))
    finally:
        plt.close(fig)
    return path
