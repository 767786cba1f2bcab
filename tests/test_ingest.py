"""Ingestion: every row loaded or quarantined with its reason, re-runs, re-deliveries, kills."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from pds_spark.catalog import dialect
from pds_spark.ingest import discover
from pds_spark.ingest import load as load_module
from pds_spark.ingest.lines import layout, parse_lines
from pds_spark.ingest.load import Loader
from pds_spark.ingest.outcomes import IngestOptions
from pds_spark.ingest.read import NUMBERED, ONE_SPLIT_A_PARTITION, file_lines
from pds_spark.ingest.rules import IngestRules
from pds_spark.pseudo.sealing import opened
from pds_spark.quality.rules import foreign_key_rules
from pds_spark.session import derived_session
from pds_spark.warehouse import Warehouse
from tests.conftest import SNDS

KINDS = [("line: truncated", "truncated_last_line"), ("line: invalid UTF-8", "invalid_utf8"),
         ("line: unbalanced quote", "unescaped_quote"), ("not an integer", "bad_number"),
         ("not a number", "bad_number"), ("not a date", "bad_date"), ("not a datetime", "bad_date"),
         ("longer than", "over_length")]


def loader(spark, settings, root: Path, name: str, the_dialect="schema", delivery="d1", parallel=2) -> Loader:
    from pds_spark.pseudo.keystore import KeyStore
    from pds_spark.pseudo.policy import Policy

    rules = IngestRules.load(settings.ingest.rules)
    return Loader(spark, Warehouse(root / name), Policy.from_settings(settings), KeyStore.from_settings(settings),
                  IngestOptions(delivery, dialect(the_dialect), rules.aliases, parallel))


def table_rows(spark, root: Path, table: str, drop=("_loaded_at",)):
    return spark.read.format("delta").load(str(root / "snds" / table)).drop(*drop)


def quarantine(spark, root: Path):
    frames = [spark.read.format("delta").load(str(p)).withColumn("_table", F.lit(p.name))
              for p in sorted((root / "quarantine").iterdir())] if (root / "quarantine").exists() else []
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out


def kind_of(reasons: list[str], width: int) -> str:
    text = " ".join(reasons)
    if text.startswith("line: truncated"):
        return "truncated_last_line"
    if text.startswith("line: ") and "fields, expected" in text:
        found = int(text.split()[1])
        return "too_many_fields" if found > width else "too_few_fields"
    return next((kind for marker, kind in KINDS if marker in text), text)


# -- parsing, pure ---------------------------------------------------------------------
def test_lines_are_split_typed_and_refused_with_reasons(spark, catalogue):
    table = catalogue.table("IR_BEN_R")
    header = table.column_names
    lay, problem = layout(table, header, {})
    assert problem is None
    values = {f.name: "" for f in table.fields}
    values.update(BEN_NIR_PSA="A" * 17, BEN_RNG_GEM="1")

    def line(**over):
        v = {**values, **over}
        return ",".join(v[f.name] for f in table.fields)

    first_text = next(f.name for f in table.fields if f.spark_type.simpleString() == "string" and not f.value_regex
                      and f.name not in ("BEN_NIR_PSA",))
    rows = [(line(), 2), (line(**{first_text: '"a,b ""quoted"""'}), 3), (line() + ",extra", 4),
            (line(**{first_text: 'bad"quote'}), 5), (line(**{first_text: "caf\ufffd"}), 6),
            (line(BEN_RNG_GEM="x"), 7), (line(BEN_NIR_PSA=""), 8),
            (line(BEN_RNG_GEM=" 1 "), 9), (line(BEN_RNG_GEM="1.5"), 10), (line(BEN_RNG_GEM="+2"), 11),
            (line(BEN_RNG_GEM="\u0661\u0662"), 12), (line(**{first_text: "\u0661\u0662"}), 13),
            (line(**{first_text: "cafBADBYTES"}), 14)]
    a_date = next(f.name for f in table.fields if f.spark_type.simpleString() == "date" and f.format == "default")
    dates = {"2020-01-05": True, "0999-12-31": True, "2020-1-05": False, "2020-01-5 ": False, "2020-01-05 x": False,
             "2020-02-30": False, " 2020-01-05": False, "2020": False, "+2020-01-01": False, "20200-01-01": False,
             "2020-01-05T": False, "2020-01-05T00:00": False, "\u0661\u0669\u0669\u0660-01-05": False}
    rows += [(line(**{a_date: text}), 20 + i) for i, text in enumerate(dates)]
    df = spark.createDataFrame(rows, "value string, _line long")
    df = df.withColumn("value", F.expr("replace(value, 'BADBYTES', CAST(X'FFFE' AS STRING))"))  # invalid bytes
    parsed = parse_lines(df, table, dialect("schema"), lay, keep=("_line",)).collect()
    got = {r._line: (r._problems, r[first_text]) for r in parsed}
    assert all(r._bad == bool(r._problems) for r in parsed)  # the decision and its reasons agree
    assert got[2][0] == [] and got[3] == ([], 'a,b "quoted"')
    assert got[4][0] == [f"line: {len(header) + 1} fields, expected {len(header)}"]
    assert got[5][0] == ["line: unbalanced quote"] and got[14][0] == ["line: invalid UTF-8"]
    assert got[6] == ([], "caf\ufffd")  # a U+FFFD written in valid UTF-8 is a character like another
    assert got[7][0] == ["BEN_RNG_GEM: not an integer"]
    assert got[8][0] == ["BEN_NIR_PSA: missing (required)"]
    # integers are strict: padded or decimal text is refused, a sign is not
    assert got[9][0] == got[10][0] == ["BEN_RNG_GEM: not an integer"] and got[11][0] == []
    # Java's parser reads Arabic-Indic digits as digits: refused in a number, kept in a text
    assert got[12][0] == ["BEN_RNG_GEM: not an integer"] and got[13] == ([], "\u0661\u0662")
    # a date is only its own writing under the pattern (Spark's cast takes more, the CSV parser's is strict)
    for i, (text, good) in enumerate(dates.items()):
        assert got[20 + i][0] == ([] if good else [f"{a_date}: not a date (yyyy-MM-dd)"]), text
    assert {str(r[a_date]) for r in parsed if r._line in (20, 21)} == {"2020-01-05", "0999-12-31"}


def test_a_header_that_does_not_fit_names_the_columns(catalogue):
    table = catalogue.table("ER_PRS_F")
    _, problem = layout(table, ["NOPE", *table.column_names[1:]], {})
    assert "columns not in the catalogue of ER_PRS_F: NOPE" in problem
    lay, problem = layout(catalogue.table("IR_BEN_R"), ["NUM_ENQ", "BEN_RNG_GEM"], {"NUM_ENQ": ("BEN_NIR_PSA",)})
    assert problem is None and lay.positions == {"BEN_NIR_PSA": 0, "BEN_RNG_GEM": 1}


# -- the shared reference files -------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_load(spark, settings, catalogue, tmp_path_factory):
    root = tmp_path_factory.mktemp("ingest-synthetic")
    files = discover(SNDS / "synthetic", catalogue)
    result = loader(spark, settings, root, "wh", parallel=4).run(files)
    return root / "wh", files, result


def test_the_published_synthetic_corpus_loads_with_every_row_accounted(spark, synthetic_load):
    wh, files, result = synthetic_load
    assert len(files) == 147 and all(f.table for f in files)
    assert {o.status for o in result.outcomes} == {"loaded", "header_error"}
    for o in result.outcomes:
        assert o.read == o.loaded + o.quarantined == 10, o.file.relative
    ledger = spark.read.format("delta").load(str(wh / "ledger"))
    assert ledger.count() == 147
    assert ledger.where("rows_read != rows_loaded + rows_quarantined").count() == 0
    assert all(len(list((t / "_delta_log").glob("*.json"))) <= 2 for t in (wh / "snds").iterdir())  # none rewritten
    loaded = {r._source_file: r["count"] for r in _all_tables(spark, wh).groupBy("_source_file").count().collect()}
    refused = {r._source_file: r["count"] for r in quarantine(spark, wh).groupBy("_source_file").count().collect()}
    for o in result.outcomes:
        assert loaded.get(o.file.relative, 0) == o.loaded and refused.get(o.file.relative, 0) == o.quarantined
    dct = next(o for o in result.outcomes if o.file.table.name == "ER_DCT_F")
    assert dct.status == "header_error" and "DCT_FOR_AMO" in dct.reason
    nirs = table_rows(spark, wh, "IR_BEN_R").select("BEN_NIR_PSA").collect()
    assert nirs and all(len(r[0]) == 64 for r in nirs)  # pseudonymised before the first write


def _all_tables(spark, wh: Path):
    """`_source_file` of every loaded row, in one scan of the tables' data files: a fresh
    load removes no file, so they are the rows (a union of 147 Delta reads took 80 s)."""
    return spark.read.schema("_source_file string").parquet(str(wh / "snds" / "*" / "_period=*" / "*.parquet"))


def test_the_cnam_sample_loads_with_num_enq_as_the_patient(spark, settings, catalogue, tmp_path):
    files = discover(SNDS / "cnam-delivery-sample", catalogue)
    result = loader(spark, settings, tmp_path, "wh", "cnam").run(files)
    by_file = {o.file.relative: o for o in result.outcomes}
    pha = by_file["DCIR/IR_PHA_R.csv"]  # the drug referential, loaded as a table (conf/catalog.toml)
    assert pha.file.table.name == "IR_PHA_R" and pha.read == pha.quarantined == 2
    assert all(o.read == o.loaded + o.quarantined for o in result.outcomes)
    loaded: dict[str, int] = {}
    for o in result.outcomes:
        if o.status == "loaded":
            loaded[o.file.table.name] = loaded.get(o.file.table.name, 0) + o.loaded
    assert all(loaded[t] > 0 for t in ("ER_PHA_F", "IR_BEN_R", "IR_IMB_R", "T_MCOaaA", "T_MCOaaD")), loaded
    # the sample breaks the catalogue in places: refused with the field named, not lost
    prs = quarantine(spark, tmp_path / "wh").where("_table = 'ER_PRS_F'").collect()
    assert prs and {tuple(r._reasons) for r in prs} == {("PSP_PPS_NUM: longer than 9",)}
    ben = table_rows(spark, tmp_path / "wh", "IR_BEN_R")
    assert ben.where(F.length("BEN_NIR_PSA") == 64).count() == ben.count() > 0
    assert {o.file.period for o in result.outcomes if o.file.table and o.file.table.name == "T_MCOaaC"} == {
        "2006", "2007", "2008"}
    periods = {r._period for r in table_rows(spark, tmp_path / "wh", "T_MCOaaA").select("_period").distinct().collect()}
    assert periods and periods <= {"2006", "2007", "2008"}
    # the sample writes IR_PHA_R's integers as decimals (PHA_INS_DTD 20011108.0, a data frame
    # export's habit): each row refused with the fields named, none taken as a whole number
    refused = quarantine(spark, tmp_path / "wh").where("_table = 'IR_PHA_R'").collect()
    assert len(refused) == 2 and all("PHA_INS_DTD: not an integer" in r._reasons for r in refused)
    assert quarantine(spark, tmp_path / "wh").where("_table = '_UNMAPPED'").count() == 0


@pytest.mark.parametrize("policy", ["EXCEPTION", "LEGACY"])
@pytest.mark.parametrize("line_by_line", [True, False])
def test_a_date_is_strict_whatever_the_sessions_time_parser_policy(spark, settings, catalogue, tmp_path, monkeypatch,
                                                                   policy, line_by_line):
    if line_by_line:  # read as a large table is, split (a small one: its files whole)
        monkeypatch.setattr(load_module, "SMALL_TABLE_BYTES", 0)
    lines = (SNDS / "synthetic" / "DCIR" / "ER_PRS_F.csv").read_text(encoding="utf-8").splitlines()
    column = lines[0].split(",").index("EXE_SOI_DTD")
    fields = lines[2].split(",")
    fields[column] = "2020-1-5"  # EXCEPTION raises on it, LEGACY takes it
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "ER_PRS_F.csv").write_text("\n".join([*lines[:2], ",".join(fields), *lines[3:]]) + "\n")
    spark.conf.set("spark.sql.legacy.timeParserPolicy", policy)
    spark.conf.set("spark.sql.parquet.compression.codec", "gzip")  # the caller's other settings hold
    try:
        result = loader(spark, settings, tmp_path, "wh").run(discover(tmp_path / "d", catalogue))
        assert spark.conf.get("spark.sql.legacy.timeParserPolicy") == policy  # the caller's session untouched
    finally:
        spark.conf.unset("spark.sql.legacy.timeParserPolicy")
        spark.conf.unset("spark.sql.parquet.compression.codec")
    written = list((tmp_path / "wh").rglob("*.parquet"))
    assert written and all(p.name.endswith(".gz.parquet") for p in written)
    assert [(o.read, o.loaded, o.quarantined) for o in result.outcomes] == [(len(lines) - 1, len(lines) - 2, 1)]
    rows = quarantine(spark, tmp_path / "wh").collect()
    assert [(r._line, list(r._reasons)) for r in rows] == [(3, ["EXE_SOI_DTD: not a date (yyyy-MM-dd)"])]


# -- a generated delivery with faults --------------------------------------------------
def test_every_injected_fault_is_quarantined_with_its_reason_and_nothing_else(spark, settings, catalogue, faulty,
                                                                            keys, tmp_path):
    corpus = faulty[0]
    files = discover(corpus / "delivery", catalogue)
    result = loader(spark, settings, tmp_path, "wh", "cnam").run(files)
    manifest = list(csv.DictReader((corpus / "truth" / "faults.csv").open(encoding="utf-8")))
    expected = {(m["file"], int(m["line"]), m["kind"]) for m in manifest
                if m["kind"] not in ("empty_file", "duplicate_file", "unknown_table")}
    widths = {t: len(catalogue.table(t).fields) for t in catalogue.tables}
    rows = quarantine(spark, tmp_path / "wh").where("_table != '_UNMAPPED'").collect()
    found = {(r._source_file, r._line, kind_of(r._reasons, widths[r._table])) for r in rows}
    assert found == expected

    status = {o.file.relative: o.status for o in result.outcomes}
    for m in manifest:
        if m["kind"] == "empty_file":
            assert status[m["file"]] == "empty"
        elif m["kind"] == "duplicate_file":
            assert status[m["file"]] == "duplicate"
        elif m["kind"] == "unknown_table":
            assert status[m["file"]] == "unmapped"
    for o in result.outcomes:
        if o.status in ("loaded", "unmapped", "header_error"):
            assert o.read == o.loaded + o.quarantined, o.file.relative

    # the quarantined line is kept, encrypted: an authorised review gets it back exactly
    q = spark.read.format("delta").load(str(tmp_path / "wh" / "quarantine" / "ER_PRS_F"))
    sample = opened(q, keys.chain("quarantine")[-1]).orderBy("_source_file", "_line").first()
    with gzip.open(corpus / "delivery" / sample._source_file, "rb") as fh:
        raw = fh.read().split(b"\n")[sample._line - 1].decode("utf-8", errors="replace")
    assert sample._raw == raw
    assert b"BEN_NIR_PSA" not in b"".join(p.read_bytes() for p in (tmp_path / "wh" / "quarantine" / "ER_PRS_F")
                                          .rglob("*.parquet"))  # no header, no clear text stored


def test_small_files_read_whole_are_numbered_as_line_by_line(spark, catalogue, faulty, tmp_path):
    # Small tables read each file whole and split it; large ones read line by line, one
    # partition per file. Both must give every line the same number, on the faulty
    # delivery (gzip, truncated lines, bad bytes) and on line-ending corner cases.
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "IR_BEN_R.csv").write_bytes(b"H\r\na\r\n\r\nb\r\n")      # CRLF, an empty line
    (odd / "IR_IMB_R.csv").write_bytes(b"H\nx\n\n\n")                 # trailing empty lines
    (odd / "ER_PHA_F.csv").write_bytes(b"H\nlast without newline")
    files = [f for f in discover(faulty[0] / "delivery", catalogue) + discover(odd, catalogue) if f.lines]
    listed = list(enumerate(files))
    numbered = derived_session(spark, NUMBERED)
    file_lines(numbered, listed, {"_source_file": lambda f: f.relative}).write.parquet(str(tmp_path / "lines"))
    whole = file_lines(spark, listed, {"_source_file": lambda f: f.relative}, whole=True)
    assert whole.rdd.getNumPartitions() < len(files)
    assert_df_equality(spark.read.parquet(str(tmp_path / "lines")), whole, ignore_row_order=True,
                       ignore_column_order=True, ignore_nullable=True)
    counts = {r._file_id: r["count"] for r in whole.groupBy("_file_id").count().collect()}
    assert all(counts.get(i, 0) == f.lines for i, f in listed)


def test_files_split_or_whole_give_the_same_data_lines_without_their_headers(spark, catalogue, tmp_path):
    # A large table's good rows are read split as Spark splits any file: the header must be
    # dropped from each file's first split alone, whatever the line endings and compression.
    # A small table's files are read whole and split at their newlines: the same lines, numbered.
    odd = tmp_path / "odd"
    odd.mkdir()
    rows = [f"{i},{'x' * (i % 7)}" for i in range(40)]
    (odd / "ER_PRS_F_2019.csv").write_text("H1,H2\n" + "\n".join(rows) + "\n")
    (odd / "ER_PRS_F_2020.csv").write_text("H1,H2\r\n" + "\r\n".join(rows) + "\r\n\r\n")
    (odd / "ER_PHA_F_2019.csv").write_text("H1,H2\n" + "\n".join(rows))  # last line without newline
    with gzip.open(odd / "ER_PHA_F_2020.csv.gz", "wt") as fh:  # not splittable: one split
        fh.write("H1,H2\n" + "\n".join(rows[:5]) + "\n")
    (odd / "IR_BEN_R.csv").write_text("H1,H2\n")  # a header alone
    files = list(enumerate(f for f in discover(odd, catalogue) if f.lines))
    file_lines(derived_session(spark, NUMBERED), files, data_only=True).write.parquet(str(tmp_path / "numbered"))
    small_splits = derived_session(spark, {**ONE_SPLIT_A_PARTITION, "spark.sql.files.maxPartitionBytes": "16"})
    split = file_lines(small_splits, files, data_only=True, numbered=False)
    assert split.rdd.getNumPartitions() > 4 * len(files)
    split.write.parquet(str(tmp_path / "split"))
    numbered = spark.read.parquet(str(tmp_path / "numbered"))
    assert_df_equality(numbered.drop("_line"), spark.read.parquet(str(tmp_path / "split")),
                       ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(numbered, file_lines(spark, files, data_only=True, whole=True),
                       ignore_row_order=True, ignore_nullable=True, ignore_column_order=True)
    lines = sum(f.data_lines for _, f in files)
    assert spark.read.parquet(str(tmp_path / "split")).count() == lines == 3 * 40 + 1 + 5  # and the empty line


# -- updates ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clean_load(spark, settings, catalogue, corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("ingest-clean")
    files = discover(corpus / "delivery", catalogue)
    result = loader(spark, settings, root, "wh").run(files)
    return root, files, result


def _versions(wh: Path) -> dict[str, int]:
    return {p.name: len(list((p / "_delta_log").glob("*.json"))) for p in (wh / "snds").iterdir()}


def test_running_the_same_delivery_again_changes_nothing(spark, settings, catalogue, clean_load):
    root, files, first = clean_load
    assert {o.status for o in first.outcomes} >= {"loaded"}
    before = _versions(root / "wh")
    ledger_rows = spark.read.format("delta").load(str(root / "wh" / "ledger")).count()
    again = loader(spark, settings, root, "wh").run(files)
    assert {o.status for o in again.outcomes} == {"skipped"}
    assert _versions(root / "wh") == before
    assert spark.read.format("delta").load(str(root / "wh" / "ledger")).count() == ledger_rows


def test_a_table_created_meanwhile_by_another_writer_is_not_taken_as_new(spark, settings, clean_load, monkeypatch):
    # The load found no table, and another writer created it before the load's own creation:
    # that creation fails, the key versions the table records are read, and the table is
    # not appended to as a new one (its periods are replaced).
    import pds_spark.ingest.table as table_module
    from pds_spark.pseudo.apply import PROPERTY
    from pds_spark.warehouse import table_properties

    root, files, _ = clean_load
    table = next(f.table for f in files if f.table and f.table.name == "ER_PRS_F")
    before = _versions(root / "wh")
    real, calls = table_module.delta_exists, []

    def absent_at_first_look(sp, path):
        calls.append(path)
        return len(calls) > 1 and real(sp, path)

    monkeypatch.setattr(table_module, "delta_exists", absent_at_first_look)
    ours = loader(spark, settings, root, "wh").tables
    identifiers = ours.policy.plan(table.name, table.column_names).pseudonyms
    path, versions, created = ours._ensure_table(table, identifiers, spark)
    recorded = table_properties(spark, path)
    assert not created and versions and versions == {
        key: int(recorded[f"{PROPERTY}.{key}.version"]) for key in versions}
    assert _versions(root / "wh") == before


def test_a_table_is_created_once_by_deltas_own_builder_with_the_sessions_defaults(spark, settings, catalogue,
                                                                                  tmp_path):
    # Tables are made by Delta's public builder: NOT NULL enforced, the session's Delta defaults
    # honoured (whatever table feature they ask for), and a second creation of the same table
    # refused rather than overwriting it.
    from pyspark.sql import types as T

    from pds_spark.warehouse import create_table, table_properties

    schema = T.StructType([T.StructField("BEN_NIR_PSA", T.StringType(), False),
                           T.StructField("EXE_SOI_DTD", T.DateType(), True),
                           T.StructField("_period", T.StringType(), False)])
    path = str(tmp_path / "t")
    assert create_table(spark, path, schema, ["_period"], {"pds.catalogue.table": "ER_PRS_F"})
    assert not create_table(spark, path, schema, ["_period"], {"pds.catalogue.table": "ER_PRS_F"})
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("version", "operation").collect()
    assert [(r.version, r.operation) for r in history] == [(0, "CREATE TABLE")]
    with pytest.raises(Exception, match="NOT_NULL"):
        spark.createDataFrame([(None, None, "2020")], "BEN_NIR_PSA string, EXE_SOI_DTD date, _period string") \
            .write.format("delta").mode("append").save(path)
    assert spark.read.format("delta").load(path).schema == schema

    key = "spark.databricks.delta.properties.defaults.enableChangeDataFeed"
    spark.conf.set(key, "true")
    try:  # the loader's sessions start from the caller's settings
        table = catalogue.table("IR_BEN_R")
        ours = loader(spark, settings, tmp_path, "wh")
        path, _, created = ours.tables._ensure_table(table, {}, ours.sessions.packed)
    finally:
        spark.conf.unset(key)
    assert created and table_properties(spark, path)["delta.enableChangeDataFeed"] == "true"


def test_quality_checks_keys_codes_and_periods_and_writes_a_report(spark, catalogue, settings, clean_load, tmp_path):
    from pds_spark.quality.run import run_quality

    root, _, _ = clean_load
    wh = Warehouse(root / "wh")
    rules = foreign_key_rules(settings.quality.rules)
    tables = ["ER_PRS_F", "ER_PHA_F", "IR_BEN_R", "T_MCOaaB", "T_MCOaaC"]
    loaded = sorted(p.name for p in (root / "wh" / "snds").iterdir())
    everything, _ = run_quality(spark, wh, catalogue, loaded, rules, tmp_path / "all.html")
    assert [f"{m.table} {m.check} {m.column}: {m.detail}" for m in everything if not m.passed] == []  # clean data
    metrics, report = run_quality(spark, wh, catalogue, tables, rules, tmp_path / "q.html")
    by = {(m.table, m.check, m.column): m for m in metrics}
    nine = "DCT_ORD_NUM,FLX_DIS_DTD,FLX_EMT_NUM,FLX_EMT_ORD,FLX_EMT_TYP,FLX_TRT_DTD,ORG_CLE_NUM,PRS_ORD_NUM,REM_TYP_AFF"
    assert by[("ER_PHA_F", "foreign_key", nine)].passed
    chain = by[("T_MCOaaC", "foreign_key", "NIR_ANO_17")]  # usable stays chain, after pseudonymisation
    assert chain.passed and chain.detail.startswith("0 of ") and not chain.detail.startswith("0 of 0 ")
    assert by[("T_MCOaaC", "foreign_key", "ETA_NUM,RSA_NUM")].passed
    assert by[("ER_PRS_F", "primary_key", nine)].passed
    assert by[("IR_BEN_R", "rows", "")].value > 0
    assert 0 <= by[("ER_PRS_F", "null_rate", "PRS_ACT_QTE")].value <= 1
    assert any(m.check == "code_list" for m in metrics) and any(m.check == "period_rows" for m in metrics)
    assert "Quality of loaded tables" in report.read_text()
    stored = spark.read.format("delta").load(wh.quality_metrics)
    assert stored.count() >= len(metrics)

    # a duplicated key and a changed period are caught on the next run
    prs = spark.read.format("delta").load(wh.snds("ER_PRS_F"))
    dup_dir = tmp_path / "dup"
    prs.union(prs.limit(1)).write.format("delta").save(str(dup_dir / "snds" / "ER_PRS_F"))
    spark.read.format("delta").load(wh.quality_metrics).write.format("delta").save(str(dup_dir / "quality_metrics"))
    again, _ = run_quality(spark, Warehouse(dup_dir), catalogue, ["ER_PRS_F"], [], tmp_path / "q2.html")
    pk = next(m for m in again if m.check == "primary_key")
    assert not pk.passed and pk.severity == "error" and pk.value == 1
    assert all(m.passed for m in again if m.check == "period_rows")  # one row more is not a big change


def test_a_redelivered_period_replaces_exactly_that_period(spark, settings, catalogue, corpus, clean_load, tmp_path):
    root, _, _ = clean_load
    wh = root / "wh"
    prs = table_rows(spark, wh, "ER_PRS_F", drop=())
    before_2020 = prs.where("_period = '2020'").drop("_loaded_at")
    count_2019 = prs.where("_period = '2019'").count()
    redelivery = tmp_path / "delivery 2 (corrigée)" / "DCIR"
    redelivery.mkdir(parents=True)
    lines = (corpus / "delivery" / "DCIR" / "ER_PRS_F_2019.csv").read_text(encoding="utf-8").splitlines(True)
    (redelivery / "ER_PRS_F_2019.csv").write_text("".join(lines[:-5]), encoding="utf-8")
    result = loader(spark, settings, root, "wh", delivery="d2").run(discover(redelivery.parent, catalogue))
    assert [o.status for o in result.outcomes] == ["loaded"]
    after = table_rows(spark, wh, "ER_PRS_F", drop=())
    assert after.where("_period = '2019'").count() == count_2019 - 5
    assert after.where("_period = '2019' AND _delivery_id != 'd2'").count() == 0
    assert_df_equality(after.where("_period = '2020'").drop("_loaded_at"), before_2020, ignore_row_order=True)


def test_a_killed_run_resumed_gives_the_same_tables(spark, settings, catalogue, corpus, clean_load, tmp_path,
                                                   monkeypatch):
    files = discover(corpus / "delivery", catalogue)
    broken = loader(spark, settings, tmp_path, "wh", parallel=1)
    real = Loader.load_table
    calls = {"n": 0}

    def dies_at_the_fourth_table(self, name, todo):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("killed")
        return real(self, name, todo)

    monkeypatch.setattr(Loader, "load_table", dies_at_the_fourth_table)
    with pytest.raises(KeyboardInterrupt):
        broken.run(files)
    monkeypatch.setattr(Loader, "load_table", real)
    loader(spark, settings, tmp_path, "wh").run(files)
    reference = clean_load[0] / "wh"
    for table in sorted(p.name for p in (reference / "snds").iterdir()):
        if table == "ER_PRS_F":
            continue  # re-delivered by the previous test
        assert_df_equality(table_rows(spark, tmp_path / "wh", table), table_rows(spark, reference, table),
                           ignore_row_order=True, ignore_nullable=True)


def test_the_ingest_job_reports_and_exits_with_the_threshold(spark, settings, tmp_path):
    from tests.test_conformity import run

    sample = tmp_path / "sample"  # two of its files: ER_PRS_F has refused rows, IR_BEN_R none
    for name in ("ER_PRS_F.csv", "IR_BEN_R.csv"):
        (sample / "DCIR").mkdir(parents=True, exist_ok=True)
        shutil.copy(SNDS / "cnam-delivery-sample" / "DCIR" / name, sample / "DCIR" / name)
    code = run("ingest", settings, "--source", str(sample), "--warehouse", str(tmp_path / "wh"),
               "--set", "ingest.max_quarantine_ratio=1")
    assert code == 0
    code = run("ingest", settings, "--source", str(sample), "--warehouse", str(tmp_path / "wh"), "--mode", "reload",
               "--set", "ingest.max_quarantine_ratio=0")
    assert code == 3


def test_raw_identifiers_reach_no_table_and_no_delta_log(spark, corpus, clean_load):
    root, _, _ = clean_load
    raw = {line.split(",")[0] for line in (corpus / "delivery" / "BENEFICIAIRE" / "IR_BEN_R.csv")
           .read_text(encoding="utf-8").splitlines()[1:]}
    header = (corpus / "delivery" / "BENEFICIAIRE" / "IR_BEN_R.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",")[0] == "BEN_NIR_PSA" and len(raw) > 100
    stored = {r[0] for r in table_rows(spark, root / "wh", "IR_BEN_R").select("BEN_NIR_PSA").collect()}
    assert len(stored) == len(raw) and not stored & raw
    logs = "".join(p.read_text(errors="replace") for p in (root / "wh").rglob("_delta_log/*.json"))
    assert not any(value in logs for value in raw)  # file statistics hold pseudonyms only


def test_a_refused_schema_stops_only_its_table(spark, settings, corpus, tmp_path, capsys):
    from tests.test_conformity import run

    schemas = tmp_path / "schemas"
    shutil.copytree(SNDS / "schemas", schemas)
    ben = next(schemas.rglob("IR_BEN_R.json"))
    ben.chmod(0o644)  # copied with the reference material's modes, which may be read-only
    doc = json.loads(ben.read_text(encoding="utf-8"))
    doc["fields"][3]["type_oracle"] = "blob"  # a value no reader can take without guessing
    ben.write_text(json.dumps(doc), encoding="utf-8")
    broken_field = doc["fields"][3]["name"]
    capsys.readouterr()
    assert run("catalog", settings, "check", "--set", f"paths.catalog={schemas}") == 2
    out = capsys.readouterr().out
    assert f"refused IR_BEN_R: {ben}, field '{broken_field}': unknown type_oracle 'blob'" in out
    assert "147 tables" in out  # 147 published schemas, one refused, and IR_PHA_R (a referential)

    wh = tmp_path / "wh"
    code = run("ingest", settings, "--source", str(corpus / "delivery"), "--catalog", str(schemas),
               "--warehouse", str(wh), "--no-quality")
    out = capsys.readouterr().out
    assert code == 3 and "their schema refused" in out and "unknown type_oracle 'blob'" in out
    ledger = spark.read.format("delta").load(str(wh / "ledger")).collect()
    ben_files = [r for r in ledger if "IR_BEN_R" in r.file]
    assert ben_files and all(r.status == "unmapped" and r.table == "_UNMAPPED" and "schema refused: IR_BEN_R" in r.reason
                             for r in ben_files)
    others = [r for r in ledger if "IR_BEN_R" not in r.file]
    assert others and {r.status for r in others} == {"loaded"}  # every other table of the delivery loads
    assert {r.table for r in others} == {p.name for p in (wh / "snds").iterdir()} and len(others) > 10
    assert sum(r.rows_read for r in ledger) == sum(r.rows_loaded + r.rows_quarantined for r in ledger)
    quarantined = spark.read.format("delta").load(str(wh / "quarantine" / "_UNMAPPED"))
    assert quarantined.count() == sum(r.rows_read for r in ben_files)
    assert spark.read.format("delta").load(str(wh / "snds" / "ER_PRS_F")).count() == \
        sum(r.rows_loaded for r in ledger if "ER_PRS_F" in r.file)


# What the quality checks find in the two reference sets, each finding explained. Any other
# finding (or one of these gone) fails the test: a new false alarm, or a check that went blind.
PUBLISHED_FINDINGS = {
    # The published synthetic files draw each table on its own: a child's keys are not its parent's.
    "a child's keys drawn apart from its parent's": {
        ("ER_PRS_F", "foreign_key", c) for c in ("PFS_EXE_NUM", "PFS_PRE_NUM", "PRS_MTT_NUM")} | {
        (t, "foreign_key", "ETA_NUM,RSA_NUM") for t in (
            "T_MCOaaA", "T_MCOaaD", "T_MCOaaDIALP", "T_MCOaaDMIP", "T_MCOaaFA", "T_MCOaaFB", "T_MCOaaFC", "T_MCOaaFI",
            "T_MCOaaFL", "T_MCOaaFM", "T_MCOaaFP", "T_MCOaaGVxx", "T_MCOaaIVG", "T_MCOaaLEG", "T_MCOaaMED",
            "T_MCOaaMEDATU", "T_MCOaaMEDTHROMBO", "T_MCOaaORP", "T_MCOaaPIE", "T_MCOaaPIP", "T_MCOaaPORG", "T_MCOaaSTC",
            "T_MCOaaUM", "T_MCOaaUPGV", "T_MCOaaVALO", "T_MCOaaZ")} | {
        (t, "foreign_key", "ETA_NUM,RHA_NUM,RHS_NUM") for t in (
            "T_SSRaaA", "T_SSRaaCCAM", "T_SSRaaCCAR", "T_SSRaaCSARR", "T_SSRaaD", "T_SSRaaLEG", "T_SSRaaMED",
            "T_SSRaaMEDATU")} | {
        (t, "foreign_key", "ETA_NUM,RHA_NUM") for t in (
            "T_SSRaaC", "T_SSRaaCMC", "T_SSRaaFA", "T_SSRaaFB", "T_SSRaaFC", "T_SSRaaFH", "T_SSRaaFI", "T_SSRaaFL",
            "T_SSRaaFM", "T_SSRaaFP", "T_SSRaaGHJ", "T_SSRaaGME", "T_SSRaaS", "T_SSRaaSTC")},
    # Ten rows drawn from few values repeat a key (2 keys over 5 rows, 1 over 3).
    "keys drawn from few values": {
        ("CT_IDE_AAAA_GN", "primary_key", "ben_nir_psa,ben_rng_gem"), ("IR_IBA_R", "primary_key", "BEN_IDT_ANO"),
        ("T_MCOaaCSTC", "primary_key", "ETA_NUM,SEQ_NUM"), ("T_MCOaaFBSTC", "primary_key", "ETA_NUM,SEQ_NUM"),
        ("T_SSRaaC", "primary_key", "ETA_NUM,RHA_NUM"), ("T_SSRaaCSTC", "primary_key", "ETA_NUM,SEQ_NUM"),
        ("T_SSRaaFBSTC", "primary_key", "ETA_NUM,SEQ_NUM")},
    # Year-months drawn over 1905-2028 (EXE_SOI_AMD 202801), beyond the date dimension IR_DTE_V;
    # regimes 676 and 677, which IR_RGM_V does not list; entry and exit modes not in MS_SOR_V.
    "values drawn outside their list": {
        ("EB_PRS_F", "code_list", c) for c in ("PRE_PRE_AMD", "EXE_SOI_AMF", "PRS_HOS_AMD", "RGM_GRG_COD")} | {
        ("ER_PRS_F", "code_list", c) for c in ("EXE_SOI_AMD", "EXE_SOI_AMF", "RGM_GRG_COD")} | {
        ("T_SSRaaS", "code_list", "ENT_MOD"), ("T_SSRaaS", "code_list", "SOR_MOD")},
}
CNAM_FINDINGS = {
    # The sample's ER_PRS_F rows are quarantined (PSP_PPS_NUM too long) and it holds no T_MCOaaB:
    # the children it delivers have no parent loaded.
    "parents refused or not delivered": {
        (t, "foreign_key", "DCT_ORD_NUM,FLX_DIS_DTD,FLX_EMT_NUM,FLX_EMT_ORD,FLX_EMT_TYP,FLX_TRT_DTD,ORG_CLE_NUM,"
                           "PRS_ORD_NUM,REM_TYP_AFF") for t in ("ER_CAM_F", "ER_PHA_F", "ER_UCD_F")} | {
        (t, "foreign_key", "ETA_NUM,RSA_NUM") for t in ("T_MCOaaA", "T_MCOaaD", "T_MCOaaUM")},
    # A sample's codes are made up: organisations, CCAM acts, UCD drugs, ICD-10 codes in no list.
    "made-up codes": {(t, "code_list", c) for t, cs in (
        ("ER_CAM_F", ("CAM_PRS_IDE", "ORG_CLE_NEW", "ORG_CLE_NUM")), ("ER_PHA_F", ("ORG_CLE_NEW", "ORG_CLE_NUM")),
        ("ER_UCD_F", ("ORG_CLE_NEW", "ORG_CLE_NUM", "UCD_UCD_COD")), ("IR_BEN_R", ("ORG_AFF_BEN", "ORG_CLE_NEW")),
        ("IR_IMB_R", ("MED_MTF_COD", "MED_NCL_IDT")), ("T_MCOaaA", ("CDC_ACT",)), ("T_MCOaaD", ("ASS_DGN",)))
        for c in cs},
}


def test_the_reference_sets_give_only_the_findings_listed_and_explained(spark, settings, catalogue, synthetic_load,
                                                                         tmp_path):
    from pds_spark.quality.run import run_quality

    rules = foreign_key_rules(settings.quality.rules)
    wh, _, result = synthetic_load
    cnam = loader(spark, settings, tmp_path, "wh", "cnam").run(discover(SNDS / "cnam-delivery-sample", catalogue))
    for where, loaded, expected in ((wh, result, PUBLISHED_FINDINGS), (tmp_path / "wh", cnam, CNAM_FINDINGS)):
        tables = sorted({o.file.table.name for o in loaded.outcomes if o.loaded})
        metrics, _ = run_quality(spark, Warehouse(where), catalogue, tables, rules, tmp_path / "q.html",
                                 quality=settings.quality)
        found = {(m.table, m.check, m.column) for m in metrics if not m.passed}
        listed = set().union(*expected.values())
        assert found == listed, (sorted(found - listed), sorted(listed - found))
        assert all(m.severity == "warning" for m in metrics if not m.passed and m.check == "code_list")
