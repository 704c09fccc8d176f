"""Server-rendered SVG bar charts: no script, no inline style (the CSP allows neither); colours are
classes in static/tokenhub.css (`chart-s0` … `chart-s5`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from analytics.selectors import Row

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 560, 180, 56, 22, 8


def _label(value: float, money: bool) -> str:
    if money:
        return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:,.1f}M"
    if abs(value) >= 1_000:
        return f"{value / 1_000:,.1f}k"
    return f"{value:,.0f}"


def bar_chart(
    rows: Sequence[Row],
    *,
    value: Callable[[Row], float | int | Decimal],
    title: str,
    money: bool = False,
) -> SafeString:
    """Grouped bars: one group per period, one bar per key (tool or model); negative values go below 0."""
    periods: list[date] = sorted({r.period for r in rows if r.period is not None})
    keys = sorted({r.key for r in rows})
    values = {(r.period, r.key): float(value(r)) for r in rows}
    if not periods:
        return format_html('<p class="muted">{}</p>', "No runs in this range.")
    top = max([0.0, *values.values()]) or 1.0
    bottom = min([0.0, *values.values()])
    span = (top - bottom) or 1.0
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    plot_w = WIDTH - PAD_LEFT

    def y(v: float) -> float:
        return PAD_TOP + (top - v) / span * plot_h

    group_w = plot_w / len(periods)
    bar_w = max(1.0, group_w * 0.8 / max(1, len(keys)))
    bars = []
    for i, period in enumerate(periods):
        for j, key in enumerate(keys):
            v = values.get((period, key), 0.0)
            if not v:
                continue
            x = PAD_LEFT + i * group_w + group_w * 0.1 + j * bar_w
            y0, y1 = sorted((y(0.0), y(v)))
            bars.append(
                (
                    f"{x:.1f}",
                    f"{y0:.1f}",
                    f"{bar_w:.1f}",
                    f"{max(0.5, y1 - y0):.1f}",
                    j % 6,
                    key,
                    period,
                    _label(v, money),
                )
            )
    every = max(1, len(periods) // 8)
    ticks = [
        (f"{PAD_LEFT + i * group_w + group_w / 2:.1f}", HEIGHT - 6, p.strftime("%b %d"))
        for i, p in enumerate(periods)
        if i % every == 0
    ]
    bar_svg = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" class="chart-s{}"><title>{} {}: {}</title></rect>',
        bars,
    )
    tick_svg = format_html_join("", '<text x="{}" y="{}" class="chart-tick">{}</text>', ticks)
    legend = format_html_join(
        "", '<span><i class="swatch chart-s{}"></i>{}</span>', ((j % 6, k) for j, k in enumerate(keys))
    )
    axis = format_html(
        '<line x1="{}" x2="{}" y1="{}" y2="{}" class="chart-axis"></line>'
        '<text x="4" y="{}" class="chart-tick">{}</text><text x="4" y="{}" class="chart-tick">{}</text>',
        PAD_LEFT,
        WIDTH,
        f"{y(0.0):.1f}",
        f"{y(0.0):.1f}",
        PAD_TOP + 10,
        _label(top, money),
        HEIGHT - PAD_BOTTOM,
        _label(bottom, money),
    )
    return format_html(
        '<figure class="chart"><figcaption>{}</figcaption><div class="legend">{}</div>'
        '<svg viewBox="0 0 {} {}" role="img" aria-label="{}">{}{}{}</svg></figure>',
        title,
        legend,
        WIDTH,
        HEIGHT,
        title,
        axis,
        bar_svg,
        tick_svg,
    )


def heat_class(pct: float | None) -> str:
    """A cohort cell's shade, in tenths (`heat-0` … `heat-10`); `heat-none` for a week not over yet."""
    return "heat-none" if pct is None else f"heat-{min(10, round(pct / 10))}"
