"""The warehouse mirrored into a real PostgreSQL: every table under the portal's names, counts
reconciled, a second delivery sending only its periods, a killed run resumed, a table altered
behind the platform's back reported. Oracle: the SQL of about 2,000 per-year tables checked by
sqlglot and the rules."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pyspark.sql import types as T

from pds_spark.export.dialects import ORACLE
from pds_spark.export.rules import check_oracle
from pds_spark.ingest.ledger import loaded_periods
from pds_spark.mirror import state
from pds_spark.mirror.plan import NO_PERIOD, Mirrored, Unit, layout, plan, target_name
from tests.conftest import platform_settings

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "pw-" + secrets.token_hex(12)
LINEAGE = [T.StructField("_source_file", T.StringType()), T.StructField("_delivery_id", T.StringType()),
           T.StructField("_loaded_at", T.TimestampType()), T.StructField("_period", T.StringType())]


# -- without a database ---------------------------------------------------------------------------
def test_names_are_the_portals():
    assert target_name("T_MCOaaB", "2014") == "T_MCO14B"
    assert target_name("CT_IND_AAAA_GN", "2019") == "CT_IND_2019_GN"
    assert target_name("T_MCOaaGVxx", "2021") == "T_MCO21GV"
    assert target_name("T_MCOaaB", NO_PERIOD) == "T_MCOaaB"
    assert target_name("ER_PRS_F", "2014") == "ER_PRS_F"


def test_a_run_plans_only_what_the_ledger_shows_newer():
    loaded = {("T_MCOaaB", "2019"): (3, 10), ("T_MCOaaB", "2020"): (3, 12), ("ER_PRS_F", "2019"): (5, 100),
              ("ER_PRS_F", "2020"): (5, 90), ("IR_BEN_R", NO_PERIOD): (2, 30)}
    sigs = {"T_MCOaaB": "s1", "ER_PRS_F": "s2", "IR_BEN_R": "s3"}
    first = plan(loaded, {}, sigs)
    assert [(u.target, u.periods, u.replace) for u in first] == [
        ("ER_PRS_F", ("2019", "2020"), False), ("IR_BEN_R", ("-",), False),
        ("T_MCO19B", ("2019",), False), ("T_MCO20B", ("2020",), False)]
    assert first[0].rows == (100, 90) and first[0].versions == (5, 5)
    mirrored = {(u.source, p): Mirrored(u.target, v, n, sigs[u.source])
                for u in first for p, v, n in zip(u.periods, u.versions, u.rows)}
    assert plan(loaded, mirrored, sigs) == []
    # a second delivery re-delivers ER_PRS_F 2020 and T_MCO20B: those periods only
    again = {**loaded, ("ER_PRS_F", "2020"): (6, 95), ("T_MCOaaB", "2020"): (4, 11)}
    assert plan(again, mirrored, sigs) == [Unit("ER_PRS_F", "ER_PRS_F", ("2020",), (6,), (95,), True),
                                           Unit("T_MCOaaB", "T_MCO20B", ("2020",), (4,), (11,), False)]
    # columns changed: the table is sent whole; --full: everything; --tables: only those
    assert plan(again, mirrored, {**sigs, "ER_PRS_F": "s9"}, tables=["ER_PRS_F"]) == [
        Unit("ER_PRS_F", "ER_PRS_F", ("2019", "2020"), (5, 6), (100, 95), False)]
    assert len(plan(loaded, mirrored, sigs, full=True)) == 4


def test_the_oracle_sql_of_every_per_year_table_keeps_the_rules(catalogue, policy):
    """Every statement a mirror sends to Oracle for the catalogue over 22 years (about 2,000 tables)."""
    years = range(2005, 2027)
    problems, statements, tables = [], 0, set()
    for table in catalogue.tables.values():
        templated = table.is_templated
        pseudonyms = policy.plan(table.name, table.column_names).pseudonym_columns
        _, columns = layout(T.StructType([*table.spark_schema.fields, *LINEAGE]), table, not templated, "keep",
                            pseudonyms)
        for period in ([str(y) for y in years] if templated else ["2019"]):
            name = target_name(table.name, period)
            tables.add(name)
            unit = Unit(table.name, name, (period,), (7,), (10,), not templated)
            sql = [ORACLE.create_table("SNDS", ORACLE.physical(name, "A"), columns),
                   *ORACLE.publish("SNDS", name, "A", "SNDS_READERS", "B"), *state.record(ORACLE, "SNDS", unit, "f" * 16)]
            if not templated:
                sql += ORACLE.replace_rows("SNDS", name, ORACLE.physical(name, "S"), "PDS_PERIOD", (period,), columns)
            for s in sql:
                statements += 1
                problems += [f"{name}: {p}" for p in check_oracle(s)]
    problems += check_oracle(ORACLE.create_table("SNDS", state.TABLE, state.COLUMNS))
    assert len(tables) >= 1_900 and statements > 10_000
    assert not problems, problems[:10]


# -- against a real PostgreSQL ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def home(spark, project_home, postgres, tmp_path_factory):
    """A copy of the project warehouse (the suite's user is an engineer) and two PostgreSQL
    targets, `portal` (schema snds) and `resume` (schema snds_resume), logged in as pds_mirror."""
    root = tmp_path_factory.mktemp("mirror")
    wh = root / "wh"
    shutil.copytree(project_home[0], wh)
    for sql in (f"CREATE ROLE pds_mirror LOGIN PASSWORD '{PASSWORD}'", "CREATE ROLE snds_readers",
                "CREATE SCHEMA snds AUTHORIZATION pds_mirror", "CREATE SCHEMA snds_resume AUTHORIZATION pds_mirror"):
        postgres.sql(sql)
    creds = root / "pg.toml"
    creds.write_text(f'user = "pds_mirror"\npassword = "{PASSWORD}"\n')
    creds.chmod(0o600)
    targets = root / "mirrors.toml"
    targets.write_text("".join(f'[{name}]\nkind = "postgresql"\nurl = "{postgres.jdbc_url}"\nschema = "{schema}"\n'
                               f'role = "snds_readers"\ncredentials = "file:{creds}"\nbatch_size = 500\n\n'
                               for name, schema in (("portal", "snds"), ("resume", "snds_resume"))))
    platform = platform_settings(root / "conf", paths_warehouse=wh, paths_work=root / "work", spark_master="local[2]",
                                 mirror_targets=targets)
    return wh, platform, root


def run(home, *argv) -> int:
    from pds_spark.jobrunner import run_job
    from tests.test_conformity import job

    m = job("mirror")
    return run_job("mirror", m.__doc__, m.body, m.add_arguments, list(argv), platform_settings=home[1])


def tables_in(postgres, schema: str) -> dict[str, int]:
    names = [r[0] for r in postgres.sql(f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}'")]
    return {n: postgres.sql(f'SELECT count(*) FROM {schema}."{n}"')[0][0] for n in names}


def mirrored_state(postgres, schema: str) -> dict[tuple[str, str], tuple]:
    rows = postgres.sql(f"SELECT source_table, period, target_table, delta_version, row_count, mirrored_at "
                        f"FROM {schema}.pds_mirror")
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def delta_rows(spark, wh: Path, table: str, period: str | None = None) -> int:
    df = spark.read.format("delta").load(str(wh / "snds" / table))
    return (df.where(f"_period = '{period}'") if period else df).count()


def redeliver(spark, settings, corpus: Path, root: Path, wh: Path) -> None:
    """A second delivery: ER_PRS_F's 2020 file less its last 5 lines, T_MCO20B less its last one."""
    from pds_spark.ingest import discover
    from tests.test_ingest import loader

    folder = root / "second"
    folder.mkdir()
    for f in (corpus / "delivery").rglob("*"):
        drop = 5 if f.name.startswith("ER_PRS_F_2020") else 1 if f.name.startswith("T_MCO20B") else 0
        if drop:
            lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
            (folder / f.name).write_text("".join(lines[:-drop]), encoding="utf-8")
    assert len(list(folder.iterdir())) == 2
    from pds_spark.catalog import Catalogue
    loader(spark, settings, wh.parent, wh.name, delivery="d2").run(discover(folder, Catalogue.from_settings(settings)))


def not_up_to_date(root: Path) -> dict[tuple[str, str], str]:
    """(table, period) -> the start of its detail, from the last reconciliation's report."""
    path = max((root / "work").glob("*/reports/mirror-reconcile-portal-*.json"), key=os.path.getmtime)
    states = json.loads(path.read_text())["states"]
    return {(s["target"], s["period"]): s["detail"] for s in states if s["status"] != "up to date"}


def test_the_warehouse_is_mirrored_reconciled_and_kept_up_to_date(spark, settings, corpus, home, postgres, caplog,
                                                                  capsys, request):
    wh, _, root = home
    # errors that name their cause: an unknown target or table, checksums without --reconcile
    assert run(home, "--target", "nowhere") == run(home, "--target", "portal", "--tables", "NO_SUCH") == 2
    assert run(home, "--target", "portal", "--checksums") == 2
    assert "not in the warehouse: NO_SUCH" in caplog.text and "no such database target" in caplog.text
    assert run(home, "--target", "portal") == 0
    got = tables_in(postgres, "snds")
    snds = sorted(p.name for p in (wh / "snds").iterdir())
    # per-year tables under the portal's names, the others whole; rows as in the warehouse
    assert got["t_mco19b"] == delta_rows(spark, wh, "T_MCOaaB", "2019") > 0
    assert got["t_mco20b"] == delta_rows(spark, wh, "T_MCOaaB", "2020") > 0
    assert got["er_prs_f"] == delta_rows(spark, wh, "ER_PRS_F") and got["ir_ben_r"] == delta_rows(spark, wh, "IR_BEN_R")
    assert "t_mcoaab" not in got and not [n for n in got if n.endswith("__stage")]
    assert len(got) - 1 == sum(len({p.name for p in (wh / "snds" / t).glob("_period=*")}) if "aa" in t else 1
                               for t in snds)
    # types from the catalogue, PDS_PERIOD on a table holding several periods, lineage dropped, granted
    cols = dict(postgres.sql("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'snds' AND table_name = 'er_prs_f'"))
    assert cols["prs_pai_mnt"] == "numeric" and cols["exe_soi_dtd"] == "date" and cols["pds_period"] == "character varying"
    assert "pds_source_file" not in cols and "_loaded_at" not in cols
    assert "pds_period" not in dict(postgres.sql("SELECT column_name, 1 FROM information_schema.columns "
                                                 "WHERE table_schema = 'snds' AND table_name = 't_mco19b'"))
    assert postgres.sql("SELECT has_table_privilege('snds_readers', 'snds.t_mco19b', 'SELECT')")[0][0]
    assert run(home, "--target", "portal", "--reconcile") == 0
    first = mirrored_state(postgres, "snds")
    assert run(home, "--target", "portal") == 0 and mirrored_state(postgres, "snds") == first  # nothing to send

    # a second delivery: only its periods are sent, the rest untouched
    redeliver(spark, settings, corpus, root, wh)
    assert run(home, "--target", "portal") == 0
    second = mirrored_state(postgres, "snds")
    changed = {k for k in second if second[k] != first[k]}
    assert changed == {("ER_PRS_F", "2020"), ("T_MCOaaB", "2020")}
    now = tables_in(postgres, "snds")
    assert now["er_prs_f"] == delta_rows(spark, wh, "ER_PRS_F") == got["er_prs_f"] - 5
    assert now["t_mco20b"] == got["t_mco20b"] - 1 and now["t_mco19b"] == got["t_mco19b"]
    assert run(home, "--target", "portal", "--reconcile") == 0

    # behind the platform's back: a row deleted, then a value changed (found by the checksums)
    postgres.sql("DELETE FROM snds.t_mco19b WHERE ctid IN (SELECT ctid FROM snds.t_mco19b LIMIT 1)")
    postgres.sql("UPDATE snds.ir_ben_r SET ben_sex_cod = 3 WHERE ctid IN (SELECT ctid FROM snds.ir_ben_r LIMIT 1)")
    assert run(home, "--target", "portal", "--reconcile") == 3
    found = not_up_to_date(root)
    assert list(found) == [("T_MCO19B", "2019")] and "the database holds" in found[("T_MCO19B", "2019")]
    assert run(home, "--target", "portal", "--tables", "T_MCOaaB", "--full") == 0  # T_MCO19B whole again
    assert run(home, "--target", "portal", "--reconcile", "--checksums", "--tables", "IR_BEN_R", "T_MCOaaB") == 3
    assert not_up_to_date(root) == {("IR_BEN_R", "-"): "BEN_SEX_COD: values differ (checksum)"}
    # the credentials: in no output, log line (Spark's included), report or audit record
    from pds_spark import audit
    from tests.test_export import output

    seen = output(request, capsys) + caplog.text
    assert "mirror portal:" in seen and PASSWORD not in seen
    assert not [p for p in (root / "work").rglob("mirror-*") if PASSWORD in p.read_text()]
    records = audit.read(spark, str(wh / "audit")).where("job = 'mirror'")
    assert records.count() >= 9 and not records.where(f"to_json(struct(*)) LIKE '%{PASSWORD}%'").count()


def test_a_run_killed_midway_resumes_to_the_same_state(spark, home, postgres):
    """The job as a scheduler runs it, SIGKILLed once a few tables are published; a re-run sends
    only what is missing and ends where an uninterrupted run would."""
    wh, platform, _ = home
    tables = ["T_MCOaaA", "T_MCOaaB", "T_MCOaaC", "T_MCOaaD", "IR_IMB_R", "ER_ETE_F"]
    proc = subprocess.Popen([str(REPO / "spark-submit.sh"), "jobs/mirror.py", "--target", "resume", "--tables",
                             *tables, "--set", "mirror.parallel=1"], cwd=REPO, env={**os.environ, "PDS_SETTINGS": str(platform)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, published = time.monotonic() + 300, 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if postgres.sql("SELECT to_regclass('snds_resume.pds_mirror') IS NOT NULL")[0][0]:
                published = postgres.sql("SELECT count(DISTINCT target_table) FROM snds_resume.pds_mirror")[0][0]
                if published >= 3:
                    break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert published >= 3, "the run ended or stalled before three tables were published"
    before = mirrored_state(postgres, "snds_resume")
    expected = {(t, p): (target_name(t, p), version, rows)  # what the ledger says, table and period
                for (t, p), (version, rows) in loaded_periods(spark, str(wh / "ledger")).items() if t in tables}
    assert len({v[0] for v in before.values()}) < len({v[0] for v in expected.values()})  # stopped before the end
    assert run(home, "--target", "resume", "--tables", *tables) == 0
    after = mirrored_state(postgres, "snds_resume")
    assert {k: v for k, v in after.items() if k in before} == before  # what was done is not sent again
    assert {k: v[:3] for k, v in after.items()} == expected and len(expected) >= 9
    assert not [n for n in tables_in(postgres, "snds_resume") if n.endswith("__stage")]
    assert run(home, "--target", "resume", "--reconcile", "--checksums", "--tables", *tables) == 0
