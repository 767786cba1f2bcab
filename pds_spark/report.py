"""Small, self-contained HTML reports a person can read (no external assets)."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:75em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}.muted{color:#666}
.bar{display:inline-block;height:.8em;background:#5b8def;vertical-align:middle}"""


@dataclass(frozen=True)
class Markup:
    """A cell written as is: markup this module's caller built (an inline SVG chart)."""

    html: str


@dataclass
class Section:
    heading: str
    text: list[str] = field(default_factory=list)
    columns: Sequence[str] = ()
    rows: Sequence[Sequence[Any]] = field(default_factory=list)


def _cell(value: Any) -> str:
    if isinstance(value, Markup):
        return f"<td>{value.html}</td>"
    if isinstance(value, bool):
        return f'<td class="{"ok" if value else "bad"}">{"yes" if value else "no"}</td>'
    if isinstance(value, (int, float)):
        shown = f"{value:,}" if isinstance(value, int) else f"{value:.4g}"
        return f'<td class="num">{shown}</td>'
    return f"<td>{html.escape(str(value if value is not None else ''))}</td>"


def render(title: str, verdict: str, ok: bool, sections: Sequence[Section]) -> str:
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='{'ok' if ok else 'bad'}'>{html.escape(verdict)}</p>",
             f"<p class='muted'>written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.heading)}</h2>")
        parts += [f"<p>{html.escape(t)}</p>" for t in s.text]
        if s.columns:
            head = "".join(f"<th>{html.escape(c)}</th>" for c in s.columns)
            body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in s.rows)
            parts.append(f"<table><tr>{head}</tr>{body}</table>" if s.rows else "<p class='muted'>none</p>")
    return "\n".join(parts) + "\n"


def write(path: Path, title: str, verdict: str, ok: bool, sections: Sequence[Section],
          data: dict | None = None) -> Path:
    """Write `path` (.html) and, with `data`, the same findings as .json beside it; atomic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    outputs = [(path, render(title, verdict, ok, sections))]
    if data is not None:
        outputs.append((path.with_suffix(".json"), json.dumps(data, indent=1, default=str) + "\n"))
    for target, text in outputs:
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    return path
