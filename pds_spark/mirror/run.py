"""The warehouse's SNDS tables mirrored into a relational schema (Oracle in production,
PostgreSQL in the tests), over the export's JDBC layer: DDL from the catalogue, a stage loaded
by Spark's JDBC writer, per-column checksums compared before publication, then swapped in (or
a period's rows replaced) in one transaction with the state row that records it.

`mirror` sends what the ledger shows newer than the target's state; `reconcile` compares, per
table and period, the ledger's rows, the Delta table's and the database's (and, on demand,
per-column checksums).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pds_spark.catalog import Catalogue
from pds_spark.catalog.model import is_templated
from pds_spark.export.checksum import Checksums, checksums
from pds_spark.export.columns import Column, ExportError
from pds_spark.export.dialects import DIALECTS
from pds_spark.export.jdbc import Control, JdbcExport, Part, Replace, export_split, export_table, reason
from pds_spark.export.workspaces import Workspace
from pds_spark.ingest.ledger import loaded_periods
from pds_spark.mirror import state
from pds_spark.mirror.plan import NO_PERIOD, PERIOD_COLUMN, Mirrored, Unit, layout, orphans, plan, signature, target_name
from pds_spark.pseudo.apply import pseudonym_columns
from pds_spark.warehouse import Warehouse, table_properties

log = logging.getLogger("pds.mirror")
LINEAGE = ("keep", "drop")


@dataclass(frozen=True)
class Source:
    """A warehouse table as the mirror sends it."""

    name: str
    frame: DataFrame  # the Delta table, as stored
    columns: list[Column]  # mirrored
    selection: list  # `frame` -> the mirrored columns
    periodic: bool  # the mirror keeps its periods apart in PDS_PERIOD

    @property
    def signature(self) -> str:
        return signature(self.columns)

    def rows(self, periods: Iterable[str], period_as: str | None = None) -> DataFrame:
        """The mirrored columns of `periods` (and the period as `period_as`)."""
        df = self.frame
        if "_period" in df.columns:
            df = df.where(F.col("_period").isin(*periods))
        return df.select(*self.selection, *([F.col("_period").alias(period_as)] if period_as else []))


def source(spark: SparkSession, warehouse: Warehouse, catalogue: Catalogue, table: str, periodic: bool,
           lineage: str) -> Source:
    """`table` of the warehouse; `periodic`: delivered by period and mirrored as one table."""
    df = spark.read.format("delta").load(warehouse.snds(table))
    pseudonyms = pseudonym_columns(table_properties(spark, warehouse.snds(table)))
    names, columns = layout(df.schema, catalogue.table(table) if table in catalogue.tables else None, periodic,
                            lineage, pseudonyms)
    return Source(table, df, columns, [F.col(old).alias(new) for old, new in names], periodic)


def _periodic(table: str, loaded: Mapping[tuple[str, str], tuple[int, int]]) -> bool:
    return not is_templated(table) and any(t == table and p != NO_PERIOD for t, p in loaded)


@dataclass
class Outcome:
    unit: Unit
    rows: int | None = None
    seconds: float = 0.0
    error: str | None = None


@dataclass
class MirrorRun:
    target: str
    planned: int  # units
    current: int  # (table, period) already mirrored
    outcomes: list[Outcome] = field(default_factory=list)
    orphans: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error]

    def summary(self) -> list[str]:
        sent = [o for o in self.outcomes if not o.error]
        lines = [f"mirror {self.target}: {len(sent)} table(s) sent ({sum(o.rows or 0 for o in sent):,} rows), "
                 f"{self.current} (table, period) already up to date, {len(self.failed)} failed"]
        lines += [f"  FAILED {o.unit.target}: {o.error}" for o in self.failed]
        lines += [f"  in the target but not in the ledger (left as is): {t} {p}" for t, p in self.orphans]
        return lines


def mirror(spark: SparkSession, warehouse: Warehouse, catalogue: Catalogue, target: Workspace, *, lineage: str,
           parallel: int, full: bool = False, tables: Iterable[str] | None = None,
           progress: Callable[[str], None] = log.info) -> MirrorRun:
    """Send to `target` every (table, period) the ledger shows loaded at a version the target
    does not hold (all of them with `full`), `parallel` tables at a time."""
    if not target.is_database:
        raise ExportError(f"target {target.name} is a {target.kind} workspace, not a database")
    dialect, schema, login = DIALECTS[target.kind], target.schema or "", target.login()
    present = set(warehouse.snds_tables())
    loaded = {k: v for k, v in loaded_periods(spark, warehouse.ledger).items() if k[0] in present}
    control = Control(target, login)
    try:
        state.ensure(control, dialect, schema)
        mirrored = state.read(control, dialect, schema)
        family = control.checksum_family()
        for left in state.clear_leftovers(control, dialect, schema):
            progress(f"mirror {target.name}: dropped {left}, left by a stopped run")
    finally:
        control.close()
    considered = {t for t, _ in loaded} & (set(tables) if tables is not None else {t for t, _ in loaded})
    names = sorted(considered)
    if not full:  # a table none of whose periods moved is not even read (a columns change waits for --full)
        moved = {t for (t, p), (version, _) in loaded.items() if (t, p) not in mirrored or
                 mirrored[(t, p)].version != version}
        names = [t for t in names if t in moved]
    sources = {t: source(spark, warehouse, catalogue, t, _periodic(t, loaded), lineage) for t in names}
    units = plan(loaded, mirrored, {t: s.signature for t, s in sources.items()}, full, names)
    run = MirrorRun(target.name, len(units), sum(1 for k in loaded if k[0] in considered) - sum(len(u.periods)
                                                                                                for u in units),
                    orphans=orphans(loaded, mirrored))
    progress(f"mirror {target.name}: {len(units)} table(s) to send, {run.current} (table, period) up to date")
    lock, count = threading.Lock(), [0]

    def told(outcome: Outcome) -> Outcome:
        with lock:
            count[0] += 1
            unit = outcome.unit
            how = "FAILED" if outcome.error else (f"{outcome.rows:,} rows" + (
                f", periods {', '.join(unit.periods)} replaced" if unit.replace else ""))
            progress(f"mirror [{count[0]}/{len(units)}] {unit.target}: {how} ({outcome.seconds:.1f} s)")
        return outcome

    def send(group: list[Unit]) -> list[Outcome]:
        src, began = sources[group[0].source], time.monotonic()
        if len(group) > 1:  # a per-year source: one Spark load for all its years, split in the database
            by_part: dict[str, Outcome] = {}

            def done(part: Part, result: JdbcExport | ExportError) -> None:
                unit = next(u for u in group if u.target == part.table)
                by_part[part.table] = told(Outcome(unit, None if isinstance(result, ExportError) else result.rows,
                                                   time.monotonic() - began,
                                                   str(result) if isinstance(result, ExportError) else None))

            parts = [Part(u.periods[0], u.target, state.record(dialect, schema, u, src.signature), u.total)
                     for u in group]
            try:
                export_split(src.rows([u.periods[0] for u in group], PERIOD_COLUMN), PERIOD_COLUMN, parts,
                             src.columns, target, login, family, f"{src.name}__bulk", done)
            except Exception as e:  # noqa: BLE001 - the parts not yet published fail together; re-run retries
                why = str(e) if isinstance(e, ExportError) else reason(e)
                for u in group:
                    if u.target not in by_part:
                        by_part[u.target] = told(Outcome(u, None, time.monotonic() - began, why))
            return [by_part[u.target] for u in group]
        unit = group[0]
        outcome = Outcome(unit)
        try:
            sent = export_table(src.rows(unit.periods), unit.target, src.columns, target, login, log.debug,
                                replace=Replace(PERIOD_COLUMN, unit.periods) if unit.replace else None,
                                record=state.record(dialect, schema, unit, src.signature), family=family,
                                expect_rows=unit.total)
            outcome.rows = sent.rows
        except ExportError as e:
            outcome.error = str(e)
        except Exception as e:  # noqa: BLE001 - one table's fault stops only that table; said without values
            outcome.error = reason(e)
        outcome.seconds = time.monotonic() - began
        return [told(outcome)]

    split: dict[str, list[Unit]] = {}
    groups: list[list[Unit]] = []
    for u in units:
        if is_templated(u.source) and not u.replace:
            split.setdefault(u.source, []).append(u)
        else:
            groups.append([u])
    groups = sorted([*groups, *split.values()], key=lambda g: -sum(u.total for u in g))  # the largest first
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        done_all = [o for outcomes in pool.map(send, groups) for o in outcomes]
    order = {u: i for i, u in enumerate(units)}
    run.outcomes = sorted(done_all, key=lambda o: order[o.unit])
    return run


# -- reconciliation --------------------------------------------------------------------------
STATUSES = ("up to date", "behind", "different", "missing", "not in the ledger")


@dataclass
class PeriodState:
    source: str
    period: str
    target: str
    ledger_version: int | None
    ledger_rows: int | None
    delta_rows: int | None
    mirrored_version: int | None
    database_rows: int | None
    status: str
    detail: str = ""


def _database_rows(control: Control, dialect, schema: str, target: str, periodic: bool) -> dict[str, int] | None:
    """Rows of a mirrored table (by period when it keeps them apart); None if it cannot be read."""
    table = dialect.qualified(schema, target)
    try:
        if periodic:
            period = dialect.ident(PERIOD_COLUMN)
            return {r[0]: int(r[1]) for r in control.query(f"SELECT {period}, COUNT(*) FROM {table} GROUP BY {period}")}
        return {"*": int(control.query(f"SELECT COUNT(*) FROM {table}")[0][0])}
    except Exception:  # noqa: BLE001 - a table dropped behind the platform's back
        control.conn.rollback()
        return None


def reconcile(spark: SparkSession, warehouse: Warehouse, catalogue: Catalogue, target: Workspace, *, lineage: str,
              with_checksums: bool = False, tables: Iterable[str] | None = None,
              progress: Callable[[str], None] = log.info) -> list[PeriodState]:
    """Every (table, period) of the ledger (of `tables`) against the Delta table and the target,
    and what the target holds that the ledger does not know."""
    dialect, schema, login = DIALECTS[target.kind], target.schema or "", target.login()
    present = set(warehouse.snds_tables())
    wanted = set(tables) if tables is not None else present
    loaded = {k: v for k, v in loaded_periods(spark, warehouse.ledger).items() if k[0] in wanted and k[0] in present}
    control = Control(target, login)
    out: list[PeriodState] = []
    try:
        state.ensure(control, dialect, schema)
        mirrored = state.read(control, dialect, schema)
        family = control.checksum_family()
        tables = sorted({t for t, _ in loaded})
        for i, t in enumerate(tables, 1):
            src = source(spark, warehouse, catalogue, t, _periodic(t, loaded), lineage)
            delta: dict[str, int] = {r[0]: r[1] for r in src.frame.groupBy("_period").count().collect()}  # per period
            periods = sorted(p for tt, p in loaded if tt == t)
            found: dict[str, dict[str, int] | None] = {}
            for p in periods:
                name = target_name(t, p)
                if name not in found:
                    found[name] = _database_rows(control, dialect, schema, name, src.periodic)
            mine: list[PeriodState] = []
            for p in periods:
                version, rows = loaded[(t, p)]
                m: Mirrored | None = mirrored.get((t, p))
                name = target_name(t, p)
                db = found[name]
                db_rows = None if db is None else db.get(p if src.periodic else "*", 0)
                status, detail = "up to date", ""
                if db is None:
                    status, detail = "missing", f"{name} cannot be read in {schema}"
                elif m is None or m.version != version:
                    status = "behind"
                    detail = "never mirrored" if m is None else f"mirrored version {m.version}, ledger {version}"
                elif delta.get(p, 0) != rows:
                    status, detail = "different", f"the warehouse holds {delta.get(p, 0)} rows, the ledger {rows}"
                elif db_rows != rows:
                    status, detail = "different", f"the database holds {db_rows} rows, the ledger {rows}"
                mine.append(PeriodState(t, p, name, version, rows, delta.get(p, 0), m.version if m else None,
                                        db_rows, status, detail))
            if with_checksums:
                _compare_checksums(control, dialect, schema, src, mine, family)
            out += mine
            counted = Counter(s.status for s in mine)
            progress(f"reconcile [{i}/{len(tables)}] {t}: " + ", ".join(f"{counted[k]} {k}" for k in STATUSES
                                                                         if counted[k]))
        for t, p in orphans(loaded, {k: m for k, m in mirrored.items() if k[0] in wanted}):
            out.append(PeriodState(t, p, mirrored[(t, p)].target, None, None, None, mirrored[(t, p)].version, None,
                                   "not in the ledger", "the target holds it; the warehouse's ledger does not"))
    finally:
        control.close()
    return out


def _compare_checksums(control: Control, dialect, schema: str, src: Source, states: list[PeriodState],
                       family: str) -> None:
    """Per mirrored table whose counts agree: per-column checksums of the source and the database."""
    targets: dict[str, list[PeriodState]] = {}
    for s in states:
        targets.setdefault(s.target, []).append(s)
    for name, group in targets.items():
        if any(s.status != "up to date" for s in group):
            continue
        expected = checksums(src.rows([s.period for s in group]), src.columns, family)
        try:
            got = Checksums.from_row(control.query(dialect.checksum_query(schema, name, src.columns, family))[0],
                                     src.columns, family)
        except Exception as e:  # noqa: BLE001 - a column dropped or retyped behind the platform's back
            control.conn.rollback()
            differences = [f"cannot be checked ({reason(e)})"]
        else:
            differences = expected.differences(got)
        if differences:
            for s in group:
                s.status, s.detail = "different", "; ".join(differences[:3])
