"""Charts as SVG, drawn by matplotlib (object API, no pyplot state; safe off the main thread).

`earnings_svg` draws a model's cumulative earnings over time as a step line: flat at zero
from registration, one step per settled channel state, flat again up to chain time.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from zkmeter.ui.format import token_amount

#: matplotlib settings for the dashboard's SVG: text left as text (the page's fonts), ids
#: salted by a constant so the same data gives the same bytes.
SVG_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "zkmeter-ui",
    "font.size": 9,
    "font.family": "sans-serif",
}
ACCENT = "#2b6cb0"
#: Seconds of margin at least on each side of the time axis (a demo settles within seconds).
MIN_MARGIN = 60
#: At most this many steps are drawn (a chart is ~700 px wide); longer series are resampled.
MAX_STEPS = 500


def earnings_svg(
    points: Sequence[tuple[int, int]],
    *,
    start: int,
    end: int,
    decimals: int,
    symbol: str,
    title: str,
) -> str:
    """An inline `<svg>` of cumulative earnings. `points` are (timestamp, amount in base
    units) in time order; the line starts at 0 at `start` and runs to `end`."""
    import matplotlib
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    times = [start]
    totals = [0]
    running = 0
    for timestamp, amount in points:
        running += amount
        times.append(timestamp)
        totals.append(running)
    if len(points) > MAX_STEPS:
        times, totals = resample_steps(times, totals, MAX_STEPS)
    times.append(max(end, times[-1]))
    totals.append(running)
    scale = 10**decimals
    dates = [_date_number(t) for t in times]
    values = [v / scale for v in totals]  # plotting only: the page shows exact amounts
    margin = max((times[-1] - start) * 0.03, MIN_MARGIN)
    left, right = _date_number(round(start - margin)), _date_number(round(times[-1] + margin))

    with matplotlib.rc_context(cast(Any, SVG_RC)):
        fig = Figure(figsize=(7.2, 2.6), dpi=100)
        ax = fig.add_subplot()
        ax.step(dates, values, where="post", color=ACCENT, linewidth=1.6)
        ax.fill_between(dates, values, step="post", color=ACCENT, alpha=0.12)
        if len(points) <= 60:  # few settlements: mark each one
            ax.plot(dates[1:-1], values[1:-1], "o", color=ACCENT, markersize=3.5)
        # Dotted past chain time: the total so far, with nothing settled since.
        ax.plot([dates[-1], right], [values[-1], values[-1]], ":", color=ACCENT, linewidth=1.2)
        ax.set_xlim(left, right)
        ax.set_title(title, loc="left")
        ax.set_ylabel(symbol)
        ax.set_ylim(bottom=0, top=max(values[-1] * 1.15, 1e-18))
        ax.yaxis.set_major_formatter(
            FuncFormatter(lambda y, _pos: token_amount(round(y * scale), decimals))
        )
        locator = AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
        ax.grid(axis="y", alpha=0.3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    # Inline in HTML: drop the XML prolog and DOCTYPE, keep the <svg> element.
    svg = svg[svg.index("<svg") :]
    return re.sub(r"<svg ", '<svg role="img" aria-label="' + _attr(title) + '" ', svg, count=1)


def _date_number(timestamp: int) -> float:
    """matplotlib's number for a UTC time (days since its epoch): floats type-check where
    datetimes do not, and its date locators and formatters read them."""
    from matplotlib.dates import date2num

    return float(date2num(datetime.fromtimestamp(timestamp, UTC)))  # type: ignore[no-untyped-call]


def resample_steps(
    times: Sequence[int], totals: Sequence[int], steps: int
) -> tuple[list[int], list[int]]:
    """A non-decreasing step series cut to at most `steps` + 1 points: the time range is split
    into `steps` equal buckets and each keeps its last point, so every drawn value is a true
    running total and the line never runs ahead of the data."""
    first, last = times[0], times[-1]
    width = max((last - first) / steps, 1e-9)
    kept_times, kept_totals = [times[0]], [totals[0]]
    previous_bucket = -1
    for i in range(1, len(times)):
        bucket = min(int((times[i] - first) / width), steps - 1)
        if bucket == previous_bucket:
            kept_times[-1], kept_totals[-1] = times[i], totals[i]
        else:
            kept_times.append(times[i])
            kept_totals.append(totals[i])
            previous_bucket = bucket
    return kept_times, kept_totals


def _attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )
