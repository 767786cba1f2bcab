"""Disclosure control: small cells suppressed with what would give them away (an attacker who
knows the released cells and totals recovers none), risk measures equal to a reference
implementation's (pycanon), extract plans decided before any data is read."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from datetime import date

import pytest

from pds_spark import charts
from pds_spark.disclosure.risk import RiskLimits, measure
from pds_spark.disclosure.suppress import TOTAL, Suppressed, determined, flowchart, hierarchy, one_way, suppress, two_way
from pds_spark.extract.plan import ExtractError, periods_within, plan_extract


def attack(s: Suppressed) -> list:
    """The blocked cells a brute-force attacker pins to one value, knowing every released cell and
    that the totals add up: interval propagation over the sums, then a search for a second
    solution for each blocked cell (its value in one solution, then below it, then above it)."""
    t = s.table
    blocked = [k for k in t.cells if s.released[k] is None]
    top = sum(t.cells.values()) + sum(v for v in s.released.values() if v is not None)

    def propagate(lo, hi):
        changed = True
        while changed:
            changed = False
            for total, parts in t.sums:
                for m in (total, *parts):
                    if m == total:
                        a, b = sum(lo[p] for p in parts), sum(hi[p] for p in parts)
                    else:
                        others = [p for p in parts if p != m]
                        a, b = lo[total] - sum(hi[p] for p in others), hi[total] - sum(lo[p] for p in others)
                    if a > lo[m]:
                        lo[m], changed = a, True
                    if b < hi[m]:
                        hi[m], changed = b, True
                    if lo[m] > hi[m]:
                        return False
        return True

    def solve(lo, hi):
        if not propagate(lo, hi):
            return None
        free = [k for k in blocked if lo[k] < hi[k]]
        if not free:
            return dict(lo)
        k = min(free, key=lambda k: hi[k] - lo[k])
        for x in range(lo[k], hi[k] + 1):
            found = solve({**lo, k: x}, {**hi, k: x})
            if found:
                return found
        return None

    lo = {k: (0 if v is None else v) for k, v in s.released.items()}
    hi = {k: (top if v is None else v) for k, v in s.released.items()}
    first = solve(dict(lo), dict(hi))
    assert first is not None and all(first[k] == t.cells[k] or True for k in blocked)
    return [k for k in blocked
            if not ((first[k] > 0 and solve(dict(lo), {**hi, k: first[k] - 1})) or solve({**lo, k: first[k] + 1}, dict(hi)))]


def random_tables(seed: int, n: int):
    rng = random.Random(seed)
    for i in range(n):
        kind = i % 4
        if kind == 0:
            rows, cols = rng.randint(2, 5), rng.randint(2, 4)
            yield two_way("t", ("r", "c"), {(f"r{a}", f"c{b}"): rng.choice([0, 1, 3, 7, 12, 15, 25, 40])
                                             for a in range(rows) for b in range(cols)})
        elif kind == 1:
            yield hierarchy("h", ("region", "department"), {
                (f"g{a}", f"d{a}{b}"): rng.choice([0, 2, 5, 11, 14, 30])
                for a in range(rng.randint(2, 3)) for b in range(rng.randint(2, 3))})
        elif kind == 2:
            n_, steps = rng.randint(150, 200), []
            for s in range(6):
                steps.append((f"s{s}", n_))
                n_ -= rng.choice([0, 2, 5, 12, 30])
            yield flowchart("f", steps)
        else:
            yield one_way("o", "band", {f"b{a}": rng.choice([0, 4, 9, 20, 33]) for a in range(rng.randint(2, 6))})


def test_a_brute_force_attacker_recovers_no_suppressed_cell():
    for table in random_tables(1, 400):
        s = suppress(table, 10)
        assert not s.withheld
        assert all(s.released[k] is None for k, n in table.cells.items() if 1 <= n <= 10)  # every small cell
        assert not determined(table, s.blocked)
        assert attack(s) == [], (table, s.released)


def test_without_secondary_suppression_the_attacker_wins():
    table = two_way("t", ("r", "c"), {("a", "x"): 4, ("a", "y"): 30, ("b", "x"): 25, ("b", "y"): 40})
    primary_only = Suppressed(table, 10, {k: (None if k == ("a", "x") else n) for k, n in table.cells.items()},
                              {("a", "x"): "primary"})
    assert attack(primary_only) == [("a", "x")]  # 34 - 30
    s = suppress(table, 10)
    assert s.primary == [("a", "x")] and len(s.blocked) == 4  # a rectangle: the smallest that hides it
    assert {k for k in s.blocked} == {("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")}
    assert attack(s) == []


def test_one_way_hierarchy_and_flowchart_suppress_what_they_must():
    ages = suppress(one_way("ages", "band", {"0-17": 3, "18-64": 120, "65+": 40}), 10)
    assert ages.released[("0-17",)] is None and ages.released[("65+",)] is None  # 3 = total - 120 - 40
    assert ages.released[(TOTAL,)] == 163 and ages.released[("18-64",)] == 120
    regions = suppress(hierarchy("places", ("region", "department"),
                                 {("11", "75"): 50, ("11", "92"): 7, ("11", "93"): 30, ("84", "69"): 60}), 10)
    assert regions.released[("11", "92")] is None and regions.released[("11", "93")] is None
    assert regions.released[(TOTAL, TOTAL)] == 147
    flow = suppress(flowchart("f", [("all", 200), ("with a diagnosis", 195), ("aged 40-80", 150)]), 10)
    assert flow.released[("excluded at step 2",)] is None  # 5 excluded
    assert flow.released[("1. all",)] is None or flow.released[("2. with a diagnosis",)] is None
    assert attack(flow) == []
    nothing_small = suppress(one_way("o", "b", {"a": 0, "b": 20}), 10)
    assert not nothing_small.blocked and nothing_small.released[("a",)] == 0  # zeros are released


def test_charts_say_suppressed_instead_of_a_count():
    ns = "{http://www.w3.org/2000/svg}"
    svg = charts.flowchart([("all", 200), ("kept", None)], excluded=[None, None])
    words = [t.text for t in ET.fromstring(svg).iter(f"{ns}text")]
    assert "suppressed" in words and "excluded: suppressed" in words
    words = [t.text for t in ET.fromstring(charts.pyramid([("0-17", None, 40)])).iter(f"{ns}text")]
    assert "suppressed" in words and "40" in words


@pytest.fixture(scope="module")
def sample(spark):
    """1000 rows of 300 people (sex, birth year, department fixed a person), a diagnosis a row."""
    rng = random.Random(5)
    people = [(f"p{i}", rng.choice("MF"), str(rng.randint(1940, 1946)), rng.choice(["75", "92", "13"]))
              for i in range(300)]
    rows = [(*rng.choice(people), rng.choice(["E11", "I10", "J45", "C50"])) for _ in range(1000)]
    return spark.createDataFrame(rows, "patient string, sex string, birth string, dept string, diagnosis string")


def test_risk_measures_equal_pycanons(spark, sample):
    from pycanon import anonymity

    pdf = sample.toPandas()  # a 1000-row test sample
    for quasi in (["sex"], ["sex", "birth"], ["sex", "birth", "dept"]):
        risk = measure(sample, quasi, "diagnosis", table="T", min_k=5)
        assert risk.k == anonymity.k_anonymity(pdf, quasi)
        assert risk.l_diversity == anonymity.l_diversity(pdf, quasi, ["diagnosis"])
        sizes = pdf.groupby(quasi).size()
        assert risk.unique == int((sizes == 1).sum()) and risk.classes == len(sizes)
        assert risk.below_k == int(sizes[sizes < 5].sum()) and risk.records == 1000


def test_risk_counts_people_not_rows_and_gates(spark, sample):
    by_people = measure(sample, ["sex", "birth", "dept"], unit="patient", table="T")
    by_rows = measure(sample, ["sex", "birth", "dept"], table="T")
    assert by_people.k <= by_rows.k and by_people.records < by_rows.records
    failures = by_people.failures(RiskLimits(min_k=5, max_unique_share=0.0))
    assert failures and "k = " in failures[0]
    assert measure(sample, ["sex"], unit="patient").failures(RiskLimits(min_k=5)) == []
    assert measure(sample, []).k is None  # no quasi-identifier: nothing to gate


GRANTS = [
    {"status": "active", "columns": ["ER_PRS_F.BEN_NIR_PSA", "ER_PRS_F.PRS_NAT_REF", "ER_PRS_F.EXE_SOI_DTD"],
     "period_from": date(2019, 1, 1), "period_to": date(2020, 12, 31), "identifying": "care_date"},
    {"status": "active", "columns": ["IR_BEN_R.BEN_NIR_PSA", "IR_BEN_R.BEN_SEX_COD"],
     "period_from": date(2018, 1, 1), "period_to": date(2020, 6, 30), "identifying": None},
    {"status": "revoked", "columns": ["T_MCOaaD.ASS_DGN"], "period_from": date(2000, 1, 1),
     "period_to": date(2030, 1, 1), "identifying": None},
]


def test_an_extract_plan_takes_the_grants_columns_and_their_common_period():
    plan = plan_extract("p1", GRANTS, ["ER_PRS_F", "IR_BEN_R"], sensitive=["ER_PRS_F.PRS_NAT_REF"])
    assert plan.columns == {"ER_PRS_F": ("BEN_NIR_PSA", "EXE_SOI_DTD", "PRS_NAT_REF"),
                            "IR_BEN_R": ("BEN_NIR_PSA", "BEN_SEX_COD")}
    assert plan.period == (date(2019, 1, 1), date(2020, 6, 30))
    assert plan.sensitive == {"ER_PRS_F": "PRS_NAT_REF"}
    assert plan_extract("p1", GRANTS, ["T_MCOaaD"]).columns == {"T_MCOaaD": ("*",)}  # revoked: refused later
    narrow = plan_extract("p1", GRANTS, columns=["ER_PRS_F.PRS_NAT_REF"], period=(date(2019, 1, 1), date(2019, 12, 31)))
    assert narrow.resource().columns == {"ER_PRS_F": ("PRS_NAT_REF",)}
    for bad in ({"columns": ["ER_PRS_F"]}, {"sensitive": ["IR_BEN_R.BEN_NAI_ANN"], "tables": ["IR_BEN_R"]}, {}):
        with pytest.raises(ExtractError):
            plan_extract("p1", GRANTS, **bad)


def test_periods_inside_the_span_only():
    assert periods_within(["2019", "2020", "202101"], (date(2019, 1, 1), date(2020, 12, 31))) == ["2019", "2020"]
    assert periods_within(["201903", "2019"], (date(2019, 3, 1), date(2019, 3, 31))) == ["201903"]
    assert periods_within(["-"], None) == periods_within(["-"], (date(2019, 1, 1), date(2019, 1, 31))) == ["-"]
