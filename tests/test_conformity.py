"""Conformity validation: a research team's file fails before pseudonymisation and passes after."""

from __future__ import annotations

import importlib.util
import json

import pytest
from pyspark.sql import functions as F

from pds_spark.pseudo.conformity import findings, name_frame, nir_like
from pds_spark.pseudo.datasets import read_dataset
from tests.conftest import KEYSTORE_SECRET, REPO, work_area


def job(name):
    spec = importlib.util.spec_from_file_location(f"job_{name}", REPO / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name, settings, *argv):
    from pds_spark.jobrunner import run_job

    m = job(name)
    common = ["--set", f"paths.warehouse={settings.paths.warehouse}", "--set", f"paths.work={settings.paths.work}",
              "--set", f"pseudonymisation.keystore={settings.pseudonymisation.keystore}"]
    return run_job(name, m.__doc__, m.body, m.add_arguments, [*argv, *common])


@pytest.fixture(scope="module")
def names(spark, settings, policy):
    return name_frame(spark, settings.paths.names, policy).cache()


def test_nir_shapes_are_recognised_with_their_key(spark):
    nir13 = "1840675123456"
    key = f"{97 - int(nir13) % 97:02d}"
    ckey = f"{97 - 1840619123456 % 97:02d}"  # Corsica: 2A counts as 19 in the key
    rows = [(nir13 + key, True), (f"1 84 06 75 123 456 {key}", True), ("18406" + "2A" + "123456" + ckey, True),
            (nir13 + f"{(int(key) + 1) % 100:02d}", False), (nir13, False), ("a" * 15, False), (None, False)]
    df = spark.createDataFrame(rows, "v string, expected boolean")
    got = [(r.v, r.hit) for r in df.select("v", nir_like(F.col("v")).alias("hit")).collect()]
    assert got == [(v, e) for v, e in rows]


def test_the_external_cohort_fails_before_and_passes_after_pseudonymisation(spark, settings, corpus, tmp_path):
    source = corpus / "external" / "cohorte_externe.csv"
    report = work_area(settings) / "conformity" / "before.html"
    assert run("validate_conformity", settings, "--input", str(source), "--report", str(report)) == 3
    found = json.loads(report.with_suffix(".json").read_text())["findings"]
    by_column = {(f["column"], f["check"]) for f in found}
    assert {("nir", "identifier not pseudonymised"), ("nir", "NIR-shaped values"), ("nom", "names"),
            ("prenom", "names"), ("nom", "identifier not removed"), ("date_naissance", "full birth date"),
            ("commune_residence", "commune not coarsened")} <= by_column
    nirs = [r.nir for r in read_dataset(spark, source).where("nir is not null").select("nir").collect()]
    text = report.read_text() + report.with_suffix(".json").read_text()
    assert nirs and not any(n in text for n in nirs)  # counts only, never values

    out = work_area(settings) / "conformity" / "cohorte_externe"
    assert run("pseudonymise", settings, "--input", str(source), "--output", str(out)) == 0
    assert run("validate_conformity", settings, "--input", str(out), "--report", str(report)) == 3  # quasi-id
    found = json.loads(report.with_suffix(".json").read_text())["findings"]
    assert [(f["column"], f["check"]) for f in found] == [("date_naissance", "quasi-identifier not granted")]
    assert run("validate_conformity", settings, "--input", str(out), "--allow", "birth_year_month",
               "--report", str(report)) == 0
    props = spark.sql(f"SHOW TBLPROPERTIES delta.`{out}`").collect()
    assert {r.key: r.value for r in props}["pds.pseudonym.platform.columns"] == "nir"


def test_pseudonymised_snds_tables_are_conform(spark, catalogue, corpus, policy, keys, names):
    from pds_spark.catalog import dialect
    from pds_spark.ingest.parse import typed
    from pds_spark.pseudo.datasets import pseudonymise_frame

    for name in ("IR_BEN_R", "ER_PRS_F", "T_MCOaaC"):
        table = catalogue.table(name)
        files = [str(p) for p in (corpus / "delivery").rglob("*.csv")
                 if catalogue.resolve(p.name) and catalogue.resolve(p.name).table.name == name]
        text = spark.read.csv(files, header=True, sep=",")
        df = typed(text, table, dialect("schema")).drop("_problems")
        raw = findings(df, name, policy, names, ["care_date", "birth_year_month", "residence_commune",
                                                 "death_date", "death_commune"])
        assert {f.check for f in raw} == {"identifier not pseudonymised"}, name
        clean = pseudonymise_frame(df, name, policy, keys).frame
        assert findings(clean, name, policy, names, ["care_date", "birth_year_month", "residence_commune",
                                                     "death_date", "death_commune"]) == [], name
        quasi = findings(clean, name, policy, names)
        assert all(f.check == "quasi-identifier not granted" for f in quasi)


def test_no_key_or_passphrase_reaches_the_audit_or_the_event_log(spark, settings, keys, corpus, tmp_path):
    out = work_area(settings) / "leak" / "pseudo"
    assert run("pseudonymise", settings, "--input", str(corpus / "external" / "cohorte_externe.csv"),
               "--output", str(out), "--project", "leak1") == 0
    secrets = [KEYSTORE_SECRET.encode()]
    for name in ("platform", "project-leak1"):
        for k in keys.chain(name):
            secrets += [k._material, *k.pads()]
    forms = {f for s in secrets for f in (s.hex(), s.hex().upper(), __import__("base64").b64encode(s).decode())}
    forms |= {KEYSTORE_SECRET}
    audit_rows = spark.read.format("delta").load(str(settings.paths.warehouse / "audit"))
    audit_text = "\n".join(json.dumps(r.asDict(recursive=True), default=str) for r in audit_rows.collect())
    event_dir = spark.conf.get("spark.eventLog.dir").removeprefix("file:")
    events = "\n".join(p.read_text(errors="replace") for p in __import__("pathlib").Path(event_dir).rglob("*")
                       if p.is_file())
    for form in forms:
        assert form not in audit_text and form not in events
