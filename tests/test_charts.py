"""The SVG charts: well-formed, one shape per row, every count written."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pds_spark import charts

NS = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{NS}text")]


def test_a_flowchart_has_a_box_a_step_and_says_what_each_step_removed():
    svg = charts.flowchart([("first drug <A10B*>", 120), ("at least 1 diagnosis", 90), ("aged 40 to 80", 90)])
    root = ET.fromstring(svg)  # well-formed: the step's text escaped
    assert len(list(root.iter(f"{NS}rect"))) == 3
    assert {"120 patients", "-30 excluded", "none excluded", "first drug <A10B*>"} <= set(texts(svg))


def test_bars_and_a_pyramid_write_their_counts():
    assert "1,234" in texts(charts.bars([("2019-01", 1234), ("2019-02", 0)]))
    svg = charts.pyramid([("0-17", 3, 4), ("18-29", 0, 12)])
    assert len(list(ET.fromstring(svg).iter(f"{NS}rect"))) == 4 and {"3", "4", "12"} <= set(texts(svg))
