"""Cohort specifications (validated without Spark) and cohorts built from events, their
flowchart checked against counts made another way."""

from __future__ import annotations

from datetime import date

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from pds_spark.cohort.build import build_cohort
from pds_spark.cohort.events import EVENT_SCHEMA
from pds_spark.cohort.spec import Cohort, from_dict, load
from pds_spark.errors import SettingsError

SPEC = {
    "cohort": {"name": "starters", "period": ["2019-01-01", "2019-12-31"]},
    "index": {"category": "drug", "codes": ["A10B*"]},
    "exclude": [{"category": "drug", "codes": ["A10A*"], "window": [-365, -1]}],
    "include": [{"category": "diagnosis", "codes": ["E11*"], "window": [-365, 365], "min_count": 1}],
    "population": {"age": [40, 80], "sex": [1, 2], "birth": "month", "death": True},
}


def with_(path: str, value):
    spec = {k: (dict(v) if isinstance(v, dict) else [dict(x) for x in v]) for k, v in SPEC.items()}
    section, _, key = path.partition(".")
    if section in ("include", "exclude"):
        spec[section][0][key] = value
    else:
        spec[section][key] = value
    return spec


@pytest.mark.parametrize("path, value, key", [
    ("cohort.period", ["2019-12-31", "2019-01-01"], "cohort.period"),
    ("cohort.name", "a name", "cohort.name"),
    ("index.category", "drugs", "index.category"),
    ("index.codes", [], "index.codes"),
    ("include.window", [10, -10], "include[0].window"),
    ("include.min_count", 0, "include[0].min_count"),
    ("exclude.min_count", 2, "exclude[0].min_count"),
    ("population.age", [80, 40], "population.age"),
    ("population.sex", [3], "population.sex"),
    ("population.birth", "day", "population.birth"),
    ("index.codes", ["E11.9"], "index.codes"),
    ("index.source", "T_MCOaaB", "index.source"),
])
def test_a_malformed_spec_names_its_file_and_key(path, value, key):
    with pytest.raises(SettingsError) as err:
        from_dict(with_(path, value), "conf/cohorts/x.toml")
    assert err.value.source == "conf/cohorts/x.toml" and err.value.key == key


def test_a_spec_file_is_read_and_an_unknown_section_refused(tmp_path):
    good = tmp_path / "c.toml"
    good.write_text('[cohort]\nname = "c"\nperiod = ["2019-01-01", "2019-12-31"]\n'
                    '[index]\ncategory = "drug"\ncodes = ["3400930000001"]\n')
    spec = load(good)
    assert spec.name == "c" and spec.index.codes == ("3400930000001",) and spec.categories_read == ("drug",)
    bad = tmp_path / "b.toml"
    bad.write_text(good.read_text() + "[outcome]\nx = 1\n")
    with pytest.raises(SettingsError, match="outcome"):
        load(bad)


def test_a_cohort_and_its_flowchart(spark):
    d = date
    ev = lambda p, cat, code, day: (p, cat, code, day, day, None, "T", 1.0)  # noqa: E731
    events = spark.createDataFrame([
        ev("p1", "drug_atc", "A10BA02", d(2019, 3, 1)), ev("p1", "drug_atc", "A10BA02", d(2019, 6, 1)),  # index 03-01
        ev("p1", "diagnosis_main", "E11.9", d(2019, 4, 1)),
        ev("p2", "drug_atc", "A10BA02", d(2019, 5, 1)), ev("p2", "drug_atc", "A10AB01", d(2019, 1, 1)),  # insulin before
        ev("p3", "drug_atc", "A10BA02", d(2019, 5, 1)),                                            # no diagnosis
        ev("p4", "drug_atc", "A10BA02", d(2018, 5, 1)),                                            # before the period
        ev("p5", "drug_atc", "A10BA02", d(2019, 2, 1)), ev("p5", "diagnosis_associated", "E119", d(2018, 3, 1)),
        ev("p6", "drug_atc", "A10BA02", d(2019, 2, 1)), ev("p6", "diagnosis_main", "E11", d(2019, 2, 2)),  # too young
        ev("p7", "drug_atc", "A10BA02", d(2019, 2, 1)), ev("p7", "diagnosis_main", "E11", d(2019, 2, 2)),  # no IR_BEN_R
    ], EVENT_SCHEMA)
    people = spark.createDataFrame([
        ("p1", d(1960, 5, 1), 1, None), ("p2", d(1960, 1, 1), 2, None), ("p3", d(1950, 1, 1), 1, None),
        ("p4", d(1950, 1, 1), 1, None), ("p5", d(1939, 3, 1), 2, d(2019, 8, 1)), ("p6", d(2000, 1, 1), 2, None)],
        "patient string, birth date, sex int, death date").withColumn("birth_year", F.year("birth"))
    cohort, steps = build_cohort(events, people, from_dict(SPEC))
    expected = spark.createDataFrame([("p1", d(2019, 3, 1), d(2019, 12, 31), 58, 1),
                                      ("p5", d(2019, 2, 1), d(2019, 8, 1), 79, 2)],
                                     "patient string, index_date date, follow_up_end date, age int, sex int")
    assert_df_equality(cohort, expected, ignore_row_order=True, ignore_nullable=True)
    # counted by hand from the rows above (inclusions, then exclusions): index p1 p2 p3 p5 p6 p7;
    # a diabetes diagnosis: -p2 -p3; no insulin before: none left to lose; in IR_BEN_R: -p7;
    # 40-80: -p6; sex: none lost
    assert [s.patients for s in steps] == [6, 4, 4, 3, 2, 2]
    assert steps[1].description.startswith("at least 1 diagnosis E11*") and steps[2].description.startswith("no drug")


def test_the_generators_planted_cohort_is_recovered_exactly(spark, events_warehouse, corpus, keys, policy):
    # The spec in conf/cohorts/ over the events layer of a loaded (pseudonymised) corpus finds
    # the generator's planted patients, no more, no fewer; so does its drug's ATC class.
    from pds_spark.cohort.layer import read_events, read_patients
    from pds_spark.pseudo.apply import PROPERTY
    from pds_spark.pseudo.hmac import pseudonymise
    from pds_spark.warehouse import Warehouse, table_properties
    from tests.conftest import REPO

    wh = Warehouse(events_warehouse)
    (key, columns), = policy.plan("IR_BEN_R", ["BEN_NIR_PSA"]).pseudonyms.items()
    version = int(table_properties(spark, wh.snds("IR_BEN_R"))[f"{PROPERTY}.{key}.version"])
    truth = spark.read.csv(str(corpus / "truth" / "planted_cohort.csv"), header=True).select("BEN_NIR_PSA")
    truth = pseudonymise(truth, columns, keys.chain(key, until=version))
    expected = {r.BEN_NIR_PSA for r in truth.collect()}  # a few dozen patients
    planted = load(REPO / "conf" / "cohorts" / "planted_diabetes.toml")
    by_class = Cohort("planted_by_class", "2019-01-01", "2019-12-31").index("drug", "A10BX*").include(
        "diagnosis_main", "E11*", window=(-730, 730)).spec()
    assert by_class.index.category == "drug_atc"
    for spec in (planted, by_class):
        events = read_events(spark, wh, spec.categories_read, spec.reach)
        cohort, steps = build_cohort(events, read_patients(spark, wh), spec)
        found = {r.patient for r in cohort.select("patient").collect()}
        assert expected and found == expected, spec.name
        assert steps[0].patients == len(expected) == steps[-1].patients
