"""Exports to a project's workspace: Parquet with a manifest and a real PostgreSQL database,
only after review, checked at arrival; every refusal and fault audited; the password nowhere.
Oracle's SQL for every catalogue table checked by sqlglot and the rules, against golden files;
the same export runs against a real Oracle when PDS_ORACLE_DSN names one."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark import audit
from pds_spark.access import Governance, Requests
from pds_spark.errors import SettingsError
from pds_spark.export.columns import Column, ExportError, target_columns
from pds_spark.export.dialects import ORACLE, POSTGRES
from pds_spark.export.rules import check_oracle, oracle_sql
from pds_spark.export.workspaces import load_workspaces
from tests.conftest import platform_settings

GOLDEN = Path(__file__).parent / "golden"


# -- the SQL, without a database ---------------------------------------------------------------
def test_columns_take_the_catalogues_types_and_the_pseudonyms_length(catalogue):
    prs = catalogue.table("ER_PRS_F")
    schema = T.StructType([prs.spark_schema[c] for c in ("BEN_NIR_PSA", "PRS_ACT_QTE", "PRS_PAI_MNT", "EXE_SOI_DTD")]
                          + [T.StructField("extra", T.DoubleType())])
    cols = target_columns(schema, prs, ["BEN_NIR_PSA"])
    assert [ORACLE.column_type(c) for c in cols] == ["VARCHAR2(64 CHAR)", "NUMBER(6,2)",
                                                     "NUMBER(6,2)", "DATE", "NUMBER"]
    assert [POSTGRES.column_type(c) for c in cols][2:] == ["numeric(6,2)", "date", "double precision"]
    # never Spark's default mapping of a double (NUMBER(19,4)), and names as each database holds them
    ddl = ORACLE.create_table("ws", "er_prs_f", cols)
    assert ddl.startswith('CREATE TABLE "WS"."ER_PRS_F" (') and '"EXTRA" NUMBER' in ddl and "19,4" not in ddl
    assert POSTGRES.create_table("WS", "ER_PRS_F", cols).startswith('CREATE TABLE "ws"."er_prs_f" (')


@pytest.mark.parametrize("name,why", [("A" * 129, "longer than oracle's 128 bytes"), ("_period", "cannot be"),
                                      ("BEN NIR", "cannot be")])
def test_names_the_database_cannot_hold_are_refused(name, why):
    with pytest.raises(ExportError, match=why):
        ORACLE.create_table("WS", "T", [Column(name, "text", 3)])


def test_a_table_over_oracles_column_limit_is_refused():
    with pytest.raises(ExportError, match="more than oracle's 1000"):
        ORACLE.create_table("WS", "T", [Column(f"C{i}", "integer", 3) for i in range(1001)])


def test_every_catalogue_tables_oracle_sql_parses_and_keeps_the_rules(catalogue, policy):
    problems, statements = [], 0
    for table in catalogue.tables.values():
        for sql in oracle_sql(table, policy.plan(table.name, table.column_names).pseudonym_columns):
            statements += 1
            problems += [f"{table.name}: {p}" for p in check_oracle(sql)]
    assert statements == 6 * len(catalogue.tables) and problems == []


@pytest.mark.parametrize("sql,problem", [
    ('CREATE TABLE "W"."T" ("A" VARCHAR2(5000 CHAR))', "VARCHAR2 of 5000 characters"),
    ('CREATE TABLE "W"."T" ("A" VARCHAR2(10))', "is not VARCHAR2(n CHAR)"),
    ('CREATE TABLE "W"."T" ("A" NUMBER(40))', "outside precision"),
    ('CREATE TABLE "W"."T" ("A" NUMBER(5,7))', "outside precision"),
    ('CREATE TABLE "W"."T" ("A" FLOAT)', "not one an export makes"),
    ('CREATE TABLE "W"."T" ("A" CLOB)', "not one an export makes"),
    ('CREATE TABLE "W"."T" (a DATE)', "not upper-case"),
    ('CREATE TABLE "W"."T" (DATE DATE)', "reserved word DATE unquoted"),
    ('CREATE TABLE "W"."T" ("A" DATE', "not valid Oracle SQL"),
    ('CREATE TABLE "W"."T" ("A" DATE, "A" DATE)', "column A twice"),
    (f'CREATE TABLE "W"."{"T" * 130}" ("A" DATE)', "longer than 128 bytes"),
    ('CREATE TABLE "W"."T" (' + ", ".join(f'"C{i}" DATE' for i in range(1001)) + ")", "1001 columns"),
    ('CREATE OR REPLACE SYNONYM "W"."T" FOR T2', "unexpected shape"),
])
def test_the_rules_catch_what_oracle_would_refuse_or_misread(sql, problem):
    assert any(problem in p for p in check_oracle(sql)), check_oracle(sql)


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("PDS_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{path} differs: PDS_UPDATE_GOLDEN=1 rewrites it (review the diff)"


def test_oracle_ddl_matches_the_golden_files(catalogue, policy):
    tables = sorted(catalogue.tables.values(), key=lambda t: t.name)
    keyed = {t.name: policy.plan(t.name, t.column_names).pseudonym_columns for t in tables}
    _golden("oracle_tables.sql", "".join(
        ORACLE.create_table("PDS_WORKSPACE", t.name, target_columns(t.spark_schema, t, keyed[t.name])) + ";\n"
        for t in tables))
    prs = catalogue.table("ER_PRS_F")
    _golden("oracle_er_prs_f.sql", "".join(s + ";\n" for s in oracle_sql(prs, keyed["ER_PRS_F"])))


def test_workspaces_are_validated_naming_file_and_key(tmp_path):
    path = tmp_path / "ws.toml"
    cases = {'[a]\nkind = "mysql"\n': "a.kind",
             '[a]\nkind = "postgresql"\nurl = "jdbc:postgresql://h/db"\nschema = "s"\n': "a.credentials",
             '[a]\nkind = "postgresql"\nurl = "jdbc:postgresql://u:pw@h/db"\nschema = "s"\ncredentials = "env:X"\n':
                 "a.url",
             '[a]\nkind = "parquet"\npath = "x"\nconnections = 0\n': "a.connections",
             '[a]\nkind = "parquet"\nfolder = "x"\n': "a.folder"}
    for text, key in cases.items():
        path.write_text(text)
        with pytest.raises(SettingsError) as e:
            load_workspaces(path)
        assert e.value.key == key and e.value.source == str(path)
    path.write_text('[a]\nkind = "postgresql"\nurl = "jdbc:postgresql://h:5/db"\nschema = "s"\n'
                    f'credentials = "file:{tmp_path / "creds.toml"}"\n')
    creds = tmp_path / "creds.toml"
    creds.write_text('user = "u"\npassword = "very-secret"\n')
    creds.chmod(0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        load_workspaces(path)["a"].login()
    creds.chmod(0o600)
    login = load_workspaces(path)["a"].login()
    assert login.password == "very-secret" and "very-secret" not in repr(login) + str(login)


# -- end to end, with a real PostgreSQL ------------------------------------------------------------
PASSWORD = "pw-" + secrets.token_hex(12)
PRS = ["ER_PRS_F.BEN_NIR_PSA", "ER_PRS_F.PRS_NAT_REF", "ER_PRS_F.PRS_ACT_QTE", "ER_PRS_F.FLX_DIS_DTD"]


@pytest.fixture(scope="module")
def home(spark, settings, project_home, postgres, tmp_path_factory):
    """The project warehouse with a reviewer (rita), a Parquet workspace and a PostgreSQL one
    whose loader logs in as pds_export (credentials in a file, mode 600)."""
    wh, _ = project_home
    root = tmp_path_factory.mktemp("export")
    for sql in (f"CREATE ROLE pds_export LOGIN PASSWORD '{PASSWORD}'", "CREATE ROLE p1_readers",
                "CREATE SCHEMA p1_ws AUTHORIZATION pds_export"):
        postgres.sql(sql)
    creds = root / "pg.toml"
    creds.write_text(f'user = "pds_export"\npassword = "{PASSWORD}"\n')
    creds.chmod(0o600)
    workspaces = root / "workspaces.toml"
    workspaces.write_text(f'[workspace]\nkind = "parquet"\npath = "{root / "parquet"}"\n\n'
                          f'[p1-pg]\nkind = "postgresql"\nurl = "{postgres.jdbc_url}"\nschema = "p1_ws"\n'
                          f'role = "p1_readers"\ncredentials = "file:{creds}"\nbatch_size = 500\n')
    platform = platform_settings(root / "conf", paths_warehouse=wh, paths_work=root / "work", spark_master="local[2]",
                                 pseudonymisation_keystore=settings.pseudonymisation.keystore,
                                 access_outbox=root / "outbox", export_workspaces=workspaces)
    gov = Governance(spark, wh)
    if gov.allowed("rita", "review") is not None:
        gov.add_user("ada", "rita", "Rita", ["reviewer"])
    return wh, platform, root


def output(request, capsys) -> str:
    """What the jobs printed, and what Spark's JVM wrote to the run's stderr (its log: the JVM
    writes to the file descriptor it inherited, pytest's global capture)."""
    out, err = capsys.readouterr()
    jvm = request.config.pluginmanager.getplugin("capturemanager").read_global_capture()
    return out + err + "".join(jvm)


def run(home, name, *argv):
    from pds_spark.jobrunner import run_job
    from tests.test_conformity import job

    m = job(name)
    return run_job(name, m.__doc__, m.body, m.add_arguments, list(argv), platform_settings=home[1])


def last_audit(spark, wh):
    return audit.read(spark, str(wh / "audit")).orderBy(F.desc("seq")).first()


def last_request(spark, wh, outbox) -> str:
    return Requests(Governance(spark, wh), outbox).list().orderBy(F.desc("requested_at")).first().request_id


def test_a_usable_extract_goes_to_postgresql_and_parquet_after_review(spark, home, postgres, caplog, capsys, request):
    wh, _, root = home
    outbox = _outbox(home)
    assert run(home, "extract", "--project", "p1", "--columns", *PRS, "IR_BEN_R.BEN_NIR_PSA",
               "IR_BEN_R.BEN_SEX_COD") == 0
    extract = spark.read.format("delta").load(str(wh / "projects" / "p1" / "ER_PRS_F"))

    assert run(home, "export", "request", "--project", "p1", "--tables", "ER_PRS_F", "IR_BEN_R",
               "--workspace", "p1-pg") == 0
    rid = last_request(spark, wh, outbox)
    # not yet approved: refused, audited
    assert run(home, "export", "send", "--request", rid) == 4
    assert "not approved" in last_audit(spark, wh).message
    Requests(Governance(spark, wh), outbox).review("rita", rid, True, "matches the protocol")
    assert run(home, "export", "send", "--request", rid) == 0
    # in the database: every row, the catalogue's types, readable by the workspace's role
    assert postgres.sql("SELECT count(*) FROM p1_ws.er_prs_f")[0][0] == extract.count() > 0
    types = dict(postgres.sql("SELECT column_name, CASE WHEN data_type = 'numeric' THEN "
                              "format('numeric(%s,%s)', numeric_precision, numeric_scale) ELSE "
                              "coalesce(character_maximum_length::text, data_type) END FROM "
                              "information_schema.columns WHERE table_schema = 'p1_ws' AND table_name = 'er_prs_f'"))
    assert types["ben_nir_psa"] == "64" and types["flx_dis_dtd"] == "date" and types["prs_nat_ref"] != "text"
    assert postgres.sql("SELECT has_table_privilege('p1_readers', 'p1_ws.er_prs_f', 'SELECT')")[0][0]
    mine = sorted(r.BEN_NIR_PSA for r in extract.select("BEN_NIR_PSA").collect())
    assert sorted(r[0] for r in postgres.sql("SELECT ben_nir_psa FROM p1_ws.er_prs_f")) == mine
    assert postgres.sql("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%stage'")[0][0] == 0
    assert run(home, "export", "verify", "--request", rid) == 0

    # the Parquet workspace: files, manifest, verified at arrival
    assert run(home, "export", "request", "--project", "p1", "--tables", "ER_PRS_F") == 0
    parquet_rid = last_request(spark, wh, outbox)
    Requests(Governance(spark, wh), outbox).review("rita", parquet_rid, True, "ok")
    assert run(home, "export", "send", "--request", parquet_rid) == 0
    folder = root / "parquet" / "p1" / parquet_rid
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["tables"]["ER_PRS_F"]["rows"] == extract.count()
    assert manifest["tables"]["ER_PRS_F"]["source"].startswith(str(wh / "projects" / "p1" / "ER_PRS_F") + "@")
    assert sorted(spark.read.parquet(str(folder / "ER_PRS_F")).collect()) == sorted(extract.collect())
    assert [p.name for p in (root / "parquet" / "p1").iterdir()] == [parquet_rid]  # no staging left
    assert run(home, "export", "verify", "--request", parquet_rid) == 0
    assert run(home, "export", "verify", "--path", str(folder)) == 0
    # a re-run replaces it whole
    assert run(home, "export", "send", "--request", parquet_rid) == 0
    assert run(home, "export", "verify", "--request", parquet_rid) == 0

    # altered after export: verify fails loudly, naming what differs
    part = sorted((folder / "ER_PRS_F").glob("*.parquet"))[0]
    part.write_bytes(part.read_bytes() + b"\0")
    seen = output(request, capsys)
    assert run(home, "export", "verify", "--path", str(folder)) == 3
    assert f"ER_PRS_F/{part.name}: bytes differs" in capsys.readouterr().out
    (folder / "manifest.json").write_text(json.dumps({**manifest, "created": "2000-01-01"}))
    assert run(home, "export", "verify", "--request", parquet_rid) == 3
    assert "manifest.json is not the one written" in last_audit(spark, wh).message
    postgres.sql("UPDATE p1_ws.er_prs_f SET prs_act_qte = prs_act_qte + 1 "
                 "WHERE ctid = (SELECT min(ctid) FROM p1_ws.er_prs_f)")
    seen += output(request, capsys)
    assert run(home, "export", "verify", "--request", rid) == 3
    assert "p1_ws.er_prs_f: PRS_ACT_QTE: values differ (checksum)" in capsys.readouterr().out
    assert last_audit(spark, wh).outcome == "threshold"
    assert PASSWORD not in seen + caplog.text  # the jobs' log and output, Spark's own log included


def _outbox(home) -> Path:
    return home[2] / "outbox"


def test_a_connection_dropped_mid_load_publishes_nothing_and_a_rerun_completes(spark, home, postgres, caplog,
                                                                              capsys, request):
    """The database kills the loader's connections after a few rows (a trigger the test puts on
    every stage table): the published table stays as it was; once the fault is gone, a re-run of
    the same approved request publishes the new one."""
    wh, _, _ = home
    outbox = _outbox(home)
    assert run(home, "extract", "--project", "p1", "--columns", *PRS, "--period", "2019-01-01", "2019-12-31") == 0
    assert run(home, "export", "request", "--project", "p1", "--tables", "ER_PRS_F", "--workspace", "p1-pg") == 0
    rid = last_request(spark, wh, outbox)
    Requests(Governance(spark, wh), outbox).review("rita", rid, True, "one year only")
    before = _published_rows(postgres)
    postgres.sql("CREATE SEQUENCE pds_fault_rows")
    postgres.sql("""CREATE FUNCTION pds_fault() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
        BEGIN IF nextval('pds_fault_rows') > 20 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
        RETURN NEW; END $$""")
    postgres.sql("""CREATE FUNCTION pds_fault_on_stage() RETURNS event_trigger LANGUAGE plpgsql AS $$
        DECLARE obj record; BEGIN
        FOR obj IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE object_identity LIKE '%__stage' LOOP
          EXECUTE format('CREATE TRIGGER pds_fault BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION pds_fault()',
                         obj.object_identity);
        END LOOP; END $$""")
    postgres.sql("CREATE EVENT TRIGGER pds_fault_on_stage ON ddl_command_end WHEN TAG IN ('CREATE TABLE') "
                 "EXECUTE FUNCTION pds_fault_on_stage()")
    try:
        assert run(home, "export", "send", "--request", rid) == 1
    finally:
        postgres.sql("DROP EVENT TRIGGER pds_fault_on_stage")
    last = last_audit(spark, wh)
    assert last.outcome == "failed" and "nothing was published" in last.message
    assert _published_rows(postgres) == before  # the old table, whole (or still none)
    assert postgres.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'p1_ws' AND tablename LIKE '%stage'") \
        [0][0] == 0
    assert "terminating connection due to administrator command" in last.message
    assert run(home, "export", "send", "--request", rid) == 0
    extract = spark.read.format("delta").load(str(wh / "projects" / "p1" / "ER_PRS_F"))
    assert _published_rows(postgres) == extract.count() != before
    assert run(home, "export", "verify", "--request", rid) == 0
    seen = output(request, capsys)
    assert "terminating connection" in seen and PASSWORD not in seen + caplog.text


def _published_rows(postgres) -> int | None:
    if postgres.sql("SELECT to_regclass('p1_ws.er_prs_f') IS NULL")[0][0]:
        return None
    return postgres.sql("SELECT count(*) FROM p1_ws.er_prs_f")[0][0]


def test_refusals_are_audited_and_nothing_leaves(spark, home, postgres):
    from pds_spark.sqltext import quoted

    wh, _, root = home
    outbox = _outbox(home)
    # an extract not marked usable cannot be asked for
    path = str(wh / "projects" / "p1" / "IR_BEN_R")
    if not (wh / "projects" / "p1" / "IR_BEN_R").exists():  # (this test run alone)
        assert run(home, "extract", "--project", "p1", "--columns", "IR_BEN_R.BEN_NIR_PSA", "IR_BEN_R.BEN_SEX_COD") == 0
    spark.sql(f"ALTER TABLE delta.{quoted(path)} SET TBLPROPERTIES ('pds.extract.status' = 'blocked')")
    assert run(home, "export", "request", "--project", "p1", "--tables", "IR_BEN_R") == 4
    assert "IR_BEN_R is blocked, not usable" in last_audit(spark, wh).message
    spark.sql(f"ALTER TABLE delta.{quoted(path)} SET TBLPROPERTIES ('pds.extract.status' = 'usable')")
    # approved, then the extract changes: what was approved no longer exists, nothing is sent
    assert run(home, "export", "request", "--project", "p1", "--tables", "IR_BEN_R") == 0
    rid = last_request(spark, wh, outbox)
    Requests(Governance(spark, wh), outbox).review("rita", rid, True, "ok")
    spark.sql(f"ALTER TABLE delta.{quoted(path)} SET TBLPROPERTIES ('pds.extract.note' = 'touched')")
    assert run(home, "export", "send", "--request", rid) == 4
    assert "changed since the request was approved" in last_audit(spark, wh).message
    assert not (root / "parquet" / "p1" / rid).exists()
    # rejected: refused
    assert run(home, "export", "request", "--project", "p1", "--tables", "IR_BEN_R") == 0
    rid = last_request(spark, wh, outbox)
    Requests(Governance(spark, wh), outbox).review("rita", rid, False, "not in the protocol")
    assert run(home, "export", "send", "--request", rid) == 4
    assert "rejected, not approved" in last_audit(spark, wh).message
    # a project the caller is not a member of
    assert run(home, "export", "request", "--project", "p9", "--tables", "IR_BEN_R") == 4
    assert run(home, "export", "request", "--project", "p1", "--tables", "NO_SUCH") == 2


def test_the_password_is_nowhere_in_the_audit_the_requests_or_the_event_logs(spark, home):
    """(The logs and outputs of the jobs that used it are checked where they ran.)"""
    wh, _, _ = home
    trail = audit.read(spark, str(wh / "audit"))
    assert trail.where(F.concat_ws("|", *[F.col(c).cast("string") for c in trail.columns]).contains(PASSWORD)) \
        .count() == 0
    governance = wh / "governance"
    for f in list(governance.rglob("*")) + list(_outbox(home).rglob("*")):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f
    events = spark.conf.get("spark.eventLog.dir").removeprefix("file:")
    for f in Path(events).rglob("*"):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f


@pytest.mark.skipif(not os.environ.get("PDS_ORACLE_DSN"), reason="no Oracle server: set PDS_ORACLE_DSN "
                    "(jdbc:oracle:thin:@//host:port/service), PDS_ORACLE_SCHEMA and PDS_ORACLE_CREDENTIALS (a file)")
def test_the_same_export_into_a_real_oracle(spark, home, tmp_path):
    from pds_spark.export.jdbc import arrived, export_table

    path = tmp_path / "ws.toml"
    path.write_text(f'[oracle]\nkind = "oracle"\nurl = "{os.environ["PDS_ORACLE_DSN"]}"\n'
                    f'schema = "{os.environ["PDS_ORACLE_SCHEMA"]}"\n'
                    f'credentials = "file:{os.environ["PDS_ORACLE_CREDENTIALS"]}"\n')
    ws = load_workspaces(path)["oracle"]
    df = spark.read.format("delta").load(str(home[0] / "projects" / "p1" / "ER_PRS_F"))
    cols = target_columns(df.schema, None, ["BEN_NIR_PSA"])
    for _ in range(2):  # the second run swaps the synonym to the other side
        loaded = export_table(df, "PDS_TEST_ER_PRS_F", cols, ws, ws.login())
        assert loaded.rows == df.count()
        assert not loaded.checksums.differences(arrived(ws, ws.login(), "PDS_TEST_ER_PRS_F", cols))
