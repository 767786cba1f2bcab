"""The linkage report (HTML with its pictures, and JSON): per step what was linked, the
blocking rules' pairs, m and u per comparison level, the match weights' histogram, the weights
of pairs near the threshold as waterfalls, and precision and recall against a truth table."""

from __future__ import annotations

import math
from dataclasses import asdict
from html import escape
from pathlib import Path

from pds_spark import charts, report
from pds_spark.linkage.run import Estimated, LinkageResult
from pds_spark.linkage.spec import LinkageSpec

BLUE, RED, GREEN = "#5b8def", "#c62828", "#1a7f37"


def histogram_svg(bins: list[tuple[float, int]], width: int, threshold_weight: float, bin_width: float) -> str:
    """Bars of pairs per match-weight bin (log scale: the many non-matches beside the few
    matches), the threshold as a red line."""
    if not bins:
        return ""
    lo, hi = min(b for b, _ in bins), max(b for b, _ in bins) + bin_width
    top = math.log10(max(n for _, n in bins) + 1)
    height, pad = 160, 30
    x = lambda w: pad + (width - 2 * pad) * (w - lo) / ((hi - lo) or 1)  # noqa: E731
    body = []
    for start, n in bins:
        h = (height - 40) * math.log10(n + 1) / (top or 1)
        bar_w = max(x(start + bin_width) - x(start) - 1, 1)
        body.append(f"<rect x='{x(start):.1f}' y='{height - 20 - h:.1f}' width='{bar_w:.1f}' "
                    f"height='{h:.1f}' fill='{BLUE}'><title>{start:g} to {start + bin_width:g}: {n:,} pairs</title></rect>")
    if lo <= threshold_weight <= hi:
        body.append(f"<line x1='{x(threshold_weight):.1f}' x2='{x(threshold_weight):.1f}' y1='10' y2='{height - 20}' "
                    f"stroke='{RED}' stroke-width='2'/><text x='{x(threshold_weight) + 4:.1f}' y='20' fill='{RED}'>"
                    "threshold</text>")
    for w in range(int(lo), int(hi) + 1, max(int((hi - lo) / 8), 1)):
        body.append(f"<text x='{x(w):.1f}' y='{height - 4}' text-anchor='middle'>{w}</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-size='11' "
            f"font-family='sans-serif'>{''.join(body)}</svg>")


def waterfall_svg(prior: float, bars: list[tuple[str, str, float]], width: int = 560) -> str:
    """The prior then each comparison's weight added, as steps from one total to the next."""
    steps = [("prior", "", prior), *bars]
    running, spans = 0.0, []
    for name, label, w in steps:
        spans.append((name, label, running, running + w))
        running += w
    lo, hi = min(0.0, *[min(a, b) for *_, a, b in spans]), max(0.0, *[max(a, b) for *_, a, b in spans])
    label_w, bar_h = 230, 18
    x = lambda v: label_w + (width - label_w - 60) * (v - lo) / ((hi - lo) or 1)  # noqa: E731
    body = [f"<line x1='{x(0):.1f}' x2='{x(0):.1f}' y1='0' y2='{len(spans) * (bar_h + 4) + 4}' stroke='#999'/>"]
    for i, (name, label, a, b) in enumerate(spans):
        y = i * (bar_h + 4) + 4
        text = f"{name}: {label}" if label else name
        body.append(f"<text x='{label_w - 6}' y='{y + 13}' text-anchor='end'>{escape(text[:34])}</text>"
                    f"<rect x='{min(x(a), x(b)):.1f}' y='{y}' width='{max(abs(x(b) - x(a)), 1):.1f}' height='{bar_h}' "
                    f"fill='{GREEN if b >= a else RED}'/><text x='{max(x(a), x(b)) + 4:.1f}' y='{y + 13}'>"
                    f"{b - a:+.2f}</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{len(spans) * (bar_h + 4) + 8}' "
            f"font-size='11' font-family='sans-serif'>{''.join(body)}</svg>")


def _whole(est: Estimated) -> str:
    if est.matches_whole is None:
        return ""
    return (f" among the records the deterministic steps left ({est.matches_whole:,.0f} among the whole inputs' "
            f"blocked pairs, {est.linked_before:,} of them linked by those steps)")


def write_report(path: Path, spec: LinkageSpec, result: LinkageResult, links_path: Path, bin_width: float) -> Path:
    linked = sum(s.linked for s in result.steps)
    verdict = f"linkage {spec.name}: {linked:,} links ({', '.join(f'{s.step} {s.linked:,}' for s in result.steps)})"
    if result.evaluation:
        e = result.evaluation
        verdict += f"; precision {e['precision']:.4f}, recall {e['recall']:.4f}, F1 {e['F1']:.4f}"
    sections = [report.Section("Steps", [f"links written to {links_path}", "Each step links only what the earlier "
                                         "ones left; ambiguous: left records with several candidates."],
                               ["step", "linked", "ambiguous", "left records still unlinked"],
                               [(s.step, s.linked, s.ambiguous, s.unlinked) for s in result.steps]),
                report.Section("Linked per step", [], ["picture"],
                               [(report.Markup(charts.bars([(s.step, s.linked) for s in result.steps])),)])]
    est = result.estimated
    if est is not None:
        sections.append(report.Section(
            "Blocking rules", [f"{est.pairs:,} pairs compared, each once (a pair of two rules counts for the first)."],
            ["rule", "pairs it adds", "pairs alone", "largest block"],
            [(c.rule.label, c.pairs, c.alone, c.largest_block) for c in est.counts]))
        rows = []
        weights = est.params.weights()
        for c in spec.comparisons:
            for level in range(1, c.levels):
                rows.append((c.name, c.labels[level], est.params.m[c.name][level], est.params.u[c.name][level],
                             weights[c.name][level]))
        sections.append(report.Section(
            "Model", [f"u from {est.u_pairs:,} random pairs; m by EM, one session a training rule (below), each "
                      "comparison's m the mean of the sessions that trained it; about "
                      f"{est.matches:,.0f} matches{_whole(est)}, so two records drawn at random match with "
                      f"probability {est.params.prior:.3g} (weight {est.params.prior_weight:+.2f}). A missing value "
                      "weighs 0."],
            ["comparison", "level", "m", "u", "weight log2(m/u)"], rows))
        sections.append(report.Section(
            "EM sessions", [], ["training rule", "pairs", "comparisons trained", "share of matches",
                                "iterations", "distinct vectors"],
            [(x.rule, x.pairs, ", ".join(x.trained), x.prior, x.iterations, x.vectors) for x in est.sessions]))
        cut = math.log2(spec.threshold / (1 - spec.threshold))
        sections.append(report.Section(
            "Match weights of the compared pairs", [f"pairs per weight (log scale); links from weight {cut:+.2f} "
                                                    f"(probability {spec.threshold})"], ["picture"],
            [(report.Markup(histogram_svg(result.histogram, 640, cut, bin_width)),)]))
        sections.append(report.Section(
            "Pairs near the threshold", ["How each comparison moved the weight (no identifier shown)."],
            ["match probability", "waterfall"],
            [(ex["match_probability"], report.Markup(waterfall_svg(est.params.prior_weight, ex["bars"])))
             for ex in result.examples]))
    if result.evaluation:
        sections.append(report.Section("Against the truth table", [], ["measure", "value"],
                                       list(result.evaluation.items())))
    data: dict[str, object] = {"spec": spec.name, "steps": [asdict(s) for s in result.steps],
                               "evaluation": result.evaluation, "histogram": result.histogram}
    if est is not None:
        data |= {"pairs": est.pairs, "prior": est.params.prior, "matches": est.matches,
                 "matches_whole": est.matches_whole, "m": est.params.m, "u": est.params.u,
                 "sessions": [asdict(x) for x in est.sessions],
                 "blocking": [{"rule": c.rule.label, "pairs": c.pairs, "alone": c.alone, "largest_block": c.largest_block}
                              for c in est.counts]}
    return report.write(path, f"Linkage {spec.name}", verdict, True, sections, data)
