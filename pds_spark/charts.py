"""Small self-contained SVG charts (no JavaScript, no plotting library): an attrition
flowchart, horizontal bars, an age-sex pyramid. Inline them in an HTML report or show them in
a notebook (`IPython.display.SVG`)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

FONT = "font-family='system-ui,sans-serif' font-size='12'"
BLUE, RED, GREY = "#5b8def", "#e0705c", "#999"


def _svg(width: int, height: int, body: list[str]) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}' {FONT}>" + "".join(body) + "</svg>")


def _count(n: int | None, unit: str = "") -> str:
    return "suppressed" if n is None else f"{n:,}{unit}"


def flowchart(steps: Sequence[tuple[str, int | None]], width: int = 560,
              excluded: Sequence[int | None] | None = None) -> str:
    """Boxes top to bottom, one a step (its description and the patients left), and on the
    right of each arrow the patients the step removed (`excluded[i]` for step i, else the
    difference). A count None was suppressed and says so."""
    box_h, gap, box_w = 44, 30, width - 170
    body = []
    for i, (text, n) in enumerate(steps):
        y = i * (box_h + gap) + 5
        body.append(f"<rect x='5' y='{y}' width='{box_w}' height='{box_h}' rx='4' fill='#eef3fd' stroke='{BLUE}'/>")
        body.append(f"<text x='14' y='{y + 18}'>{escape(text[:70])}</text>")
        body.append(f"<text x='14' y='{y + 35}' font-weight='600'>{_count(n, ' patients')}</text>")
        if i:
            x, top = 5 + box_w // 2, y - gap
            body.append(f"<line x1='{x}' y1='{top}' x2='{x}' y2='{y - 4}' stroke='{GREY}'/>"
                        f"<path d='M{x - 4},{y - 9} L{x},{y - 2} L{x + 4},{y - 9}' fill='{GREY}'/>")
            before = steps[i - 1][1]
            lost = excluded[i] if excluded is not None else (None if n is None or before is None else before - n)
            said, colour = (("excluded: suppressed", GREY) if lost is None else
                            (f"-{lost:,} excluded", RED) if lost else ("none excluded", GREY))
            body.append(f"<text x='{x + 12}' y='{top + gap // 2 + 4}' fill='{colour}'>{said}</text>")
    return _svg(width, len(steps) * (box_h + gap) + 10, body)


def bars(rows: Sequence[tuple[str, float]], width: int = 560, unit: str = "") -> str:
    """One horizontal bar a row (label, value), the value written at its end."""
    top = max([v for _, v in rows] or [1]) or 1
    label_w, bar_h = 150, 18
    body = []
    for i, (label, value) in enumerate(rows):
        y = i * (bar_h + 4) + 4
        w = (width - label_w - 80) * value / top
        body.append(f"<text x='{label_w - 6}' y='{y + 13}' text-anchor='end'>{escape(str(label)[:24])}</text>"
                    f"<rect x='{label_w}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='{BLUE}'/>"
                    f"<text x='{label_w + w + 4:.1f}' y='{y + 13}'>{value:,.4g}{escape(unit)}</text>")
    return _svg(width, len(rows) * (bar_h + 4) + 8, body)


def pyramid(rows: Sequence[tuple[str, int | None, int | None]], width: int = 560) -> str:
    """An age-sex pyramid: (age band, men, women), the youngest band at the bottom; a count
    None was suppressed: no bar, the word instead."""
    top = max([max(m or 0, w or 0) for _, m, w in rows] or [1]) or 1
    mid, bar_h, half = width // 2, 16, width // 2 - 90
    body = [f"<text x='{mid - 30}' y='12' text-anchor='end'>men</text>",
            f"<text x='{mid + 30}' y='12'>women</text>"]
    for i, (band, men, women) in enumerate(reversed(rows)):
        y = 20 + i * (bar_h + 3)
        wm, ww = half * (men or 0) / top, half * (women or 0) / top
        body.append(f"<rect x='{mid - 25 - wm:.1f}' y='{y}' width='{wm:.1f}' height='{bar_h}' fill='{BLUE}'/>"
                    f"<rect x='{mid + 25}' y='{y}' width='{ww:.1f}' height='{bar_h}' fill='{RED}'/>"
                    f"<text x='{mid}' y='{y + 12}' text-anchor='middle'>{escape(band)}</text>"
                    f"<text x='{mid - 29 - wm:.1f}' y='{y + 12}' text-anchor='end' fill='{GREY}'>{_count(men)}</text>"
                    f"<text x='{mid + 29 + ww:.1f}' y='{y + 12}' fill='{GREY}'>{_count(women)}</text>")
    return _svg(width, 24 + len(rows) * (bar_h + 3), body)
