"""Small charts drawn on the server as SVG: no chart library to download on a slow link, nothing
to run in the browser, and they print. Each chart has a ``<title>`` and a text summary for screen
readers; colours come from CSS classes (``app.css``: ``.s0``…``.s5`` for formalisation stages).

    sparkline([3, 5, 4, 9], label="Children supported per month")
    stacked_bars(["2025-01", "2025-02"], {"0": [10, 8], "1": [5, 7]}, label="Sites per stage")
    bars(["2025-01", "2025-02"], [4, 2], label="Red flags per month")
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape


def _svg(width: int, height: int, label: str, body: str, css: str = "chart") -> Markup:
    return Markup(f'<svg class="{css}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
                  f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
                  f"{body}</svg>")


def sparkline(values: Sequence[float | None], *, label: str, width: int = 200, height: int = 40) -> Markup:
    """A line of the values (None: a gap), scaled to the largest; the last point is marked."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if not points:
        return _svg(width, height, label, "", css="sparkline")
    top = max(v for _, v in points) or 1
    step = width / max(len(values) - 1, 1)
    coords = [(round(i * step, 1), round(height - 3 - (v / top) * (height - 6), 1)) for i, v in points]
    path = " ".join(f"{x},{y}" for x, y in coords)
    last_x, last_y = coords[-1]
    body = f'<polyline class="line" points="{path}"/><circle class="dot" cx="{last_x}" cy="{last_y}" r="3"/>'
    return _svg(width, height, label, body, css="sparkline")


def _axis_labels(labels: Sequence[str], x_of, height: int, every: int) -> str:  # noqa: ANN001
    out = []
    last = len(labels) - 1
    for i, text in enumerate(labels):
        if i % every == 0 or i == last:
            if 0 < last - i < every and i != last:
                continue  # too close to the last label, which is always shown
            anchor = "end" if i == last and last > 0 else "middle"  # the last label stays inside the chart
            out.append(f'<text x="{x_of(i)}" y="{height - 2}" text-anchor="{anchor}">{escape(text)}</text>')
    return "".join(out)


def stacked_bars(labels: Sequence[str], series: dict[str, Sequence[float]], *, label: str,
                 classes: dict[str, str] | None = None, width: int = 600, height: int = 200) -> Markup:
    """One bar per label, stacked by series (e.g. sites per formalisation stage per month).

    ``classes`` maps a series name to its CSS class (default ``s<name>``, the stage colours).
    """
    classes = classes or {name: f"s{name}" for name in series}
    n = len(labels)
    if n == 0:
        return _svg(width, height, label, "")
    totals = [sum(values[i] for values in series.values()) for i in range(n)]
    top = max(totals) or 1
    plot_h, left = height - 18, 28
    slot = (width - left) / n
    bar_w = max(slot * 0.75, 1)
    body = [f'<line class="axis" x1="{left}" y1="{plot_h}" x2="{width}" y2="{plot_h}"/>',
            f'<text x="0" y="10">{_fmt(top)}</text>', f'<text x="0" y="{plot_h}">0</text>']
    for i in range(n):
        y = plot_h
        x = left + i * slot + (slot - bar_w) / 2
        for name, values in series.items():
            value = values[i]
            if not value:
                continue
            h = value / top * (plot_h - 4)
            y -= h
            body.append(f'<rect class="{escape(classes.get(name, ""))}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                        f'height="{h:.1f}"><title>{escape(labels[i])} · {escape(name)}: {_fmt(value)}</title></rect>')
    body.append(_axis_labels(labels, lambda i: round(left + i * slot + slot / 2, 1), height, max(n // 6, 1)))
    return _svg(width, height, label, "".join(body))


def bars(labels: Sequence[str], values: Sequence[float], *, label: str, width: int = 600, height: int = 160) -> Markup:
    """One bar per label (e.g. red flags per month)."""
    return stacked_bars(labels, {label: values}, label=label, classes={label: "bar"}, width=width, height=height)


def line(labels: Sequence[str], values: Sequence[float | None], *, label: str, width: int = 600,
         height: int = 160, step: bool = False) -> Markup:
    """A line over labelled points (e.g. a site's stage over time; ``step`` draws it as a staircase)."""
    n = len(labels)
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if n == 0 or not points:
        return _svg(width, height, label, "")
    top = max(v for _, v in points) or 1
    plot_h, left = height - 18, 28
    slot = (width - left) / max(n - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return round(left + i * slot, 1), round(plot_h - v / top * (plot_h - 6), 1)

    coords = [xy(i, v) for i, v in points]
    if step:
        stepped = [coords[0]]
        for x, y in coords[1:]:
            stepped += [(x, stepped[-1][1]), (x, y)]
        coords = stepped
    body = [f'<line class="axis" x1="{left}" y1="{plot_h}" x2="{width}" y2="{plot_h}"/>',
            f'<text x="0" y="10">{_fmt(top)}</text>', f'<text x="0" y="{plot_h}">0</text>',
            f'<polyline class="line" points="{" ".join(f"{x},{y}" for x, y in coords)}"/>']
    for i, v in points:
        x, y = xy(i, v)
        body.append(f'<circle class="dot" cx="{x}" cy="{y}" r="3"><title>{escape(labels[i])}: {_fmt(v)}</title></circle>')
    body.append(_axis_labels(labels, lambda i: round(left + i * slot, 1), height, max(n // 6, 1)))
    return _svg(width, height, label, "".join(body))


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
