"""Tables loaded into a workspace database: created from the catalogue's types, filled by
Spark's JDBC writer in parallel batches, checked, then swapped in at once.

The control plane (DDL, grants, checks) goes through Python drivers (`pg8000`, and
`python-oracledb` in thin mode); the rows through Spark's JDBC writer (the PostgreSQL and
Oracle drivers in jars/). A load that fails or arrives different leaves the published table as
it was; the stage is dropped, and a re-run starts again from an empty one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass

from pyspark.sql import DataFrame

from pds_spark.export.checksum import Checksums, checksums
from pds_spark.export.columns import Column, ExportError
from pds_spark.export.dialects import DIALECTS, ORACLE, POSTGRES, plain_value
from pds_spark.export.workspaces import Credentials, Workspace

log = logging.getLogger("pds.export")


class Control:
    """A control-plane connection to a workspace database."""

    def __init__(self, workspace: Workspace, login: Credentials):
        self.workspace = workspace
        where = workspace.address()
        try:
            if workspace.kind == "postgresql":
                import pg8000.dbapi

                self.conn = pg8000.dbapi.connect(user=login.user, password=login.password, host=where["host"],
                                                 port=int(where["port"]), database=where["database"],
                                                 application_name="pds-export")
                self.run(["SET DateStyle = ISO, YMD"])  # a date's text is yyyy-mm-dd (the checksums')
            else:
                import oracledb

                self.conn = oracledb.connect(user=login.user, password=login.password,
                                             dsn=f"{where['host']}:{where['port']}/{where['database']}")
        except Exception as e:  # noqa: BLE001 - the driver's message may echo the connection string
            raise ExportError(f"cannot connect to workspace {workspace.name} as {login.user}: "
                              f"{type(e).__name__}") from None

    def checksum_family(self) -> str:
        """The cheapest hash both Spark and this database compute (`dialects.FAMILIES`)."""
        if self.workspace.kind == "postgresql" and int(self.query("SHOW server_version_num")[0][0]) >= 180000:
            return "crc32"
        return "md5"

    def query(self, sql: str) -> list[tuple]:
        with closing(self.conn.cursor()) as cur:
            cur.execute(sql)
            rows = cur.fetchall()
        self.conn.commit()
        return [tuple(r) for r in rows]

    def run(self, statements: Sequence[str]) -> None:
        """The statements in one transaction (Oracle: its DDL commits each on its own)."""
        try:
            with closing(self.conn.cursor()) as cur:
                for sql in statements:
                    cur.execute(sql)
            self.conn.commit()
        except Exception:
            self.conn.rollback()
            raise

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - a dropped connection is already closed
            pass


@dataclass(frozen=True)
class JdbcExport:
    table: str  # as the workspace names it
    rows: int
    checksums: Checksums


def reason(error: BaseException) -> str:
    """What went wrong, without the values or statements a driver puts in its messages."""
    text = str(error)
    java = re.findall(r"(?:^|Caused by: )((?:java|org\.postgresql|oracle)[\w.$]*\.\w*(?:Exception|Error))"
                      r"(?::[ \t]*([^\n]*))?", text, re.M)  # the root cause is the last
    if not java:
        return type(error).__name__
    name, message = java[-1]
    message = re.sub(r"'(?:[^']|'')*'", "'…'", message)
    message = re.sub(r"(?i)\b(VALUES|INSERT INTO|Batch entry)\b.*", "…", message)[:200]
    return f"{name}: {message}".rstrip(": ")


def _rows(df: DataFrame, dialect, columns: Sequence[Column]) -> DataFrame:
    return df.toDF(*[dialect.normal(c.name) for c in columns])


def jdbc_options(workspace: Workspace, login: Credentials, table: str) -> dict[str, str]:
    options = {"url": workspace.url or "", "dbtable": table, "driver": workspace.driver, "user": login.user,
               "password": login.password, "batchsize": str(workspace.batch_size),
               "numPartitions": str(workspace.connections)}
    if workspace.kind == "postgresql":
        options |= {"reWriteBatchedInserts": "true", "logServerErrorDetail": "false"}
    return options


@dataclass(frozen=True)
class Replace:
    """Publish by replacing only the rows whose `column` holds one of `values` (the table exists)."""

    column: str
    values: tuple[str, ...]


@dataclass
class _Stage:
    """A table's stage in the workspace: made empty, checked, then published."""

    control: Control
    workspace: Workspace
    table: str  # as the platform names it
    columns: Sequence[Column]
    replace: Replace | None = None

    def __post_init__(self):
        self.dialect = DIALECTS[self.workspace.kind]
        self.schema = self.workspace.schema or ""
        self.name = self.dialect.normal(self.table)
        self.side, self.previous = "", None
        if self.dialect is POSTGRES:
            self.stage = POSTGRES.stage(self.name)
            self.control.run(POSTGRES.prepare(self.schema, self.name, self.columns))
        elif self.replace is not None:
            self.stage = ORACLE.physical(self.name, "S")
            self.control.run(ORACLE.prepare(self.schema, self.name, self.columns, "S",
                                            _oracle_has(self.control, self.schema, self.stage)))
        else:
            self.side, self.previous, exists = _oracle_sides(self.control, self.schema, self.name)
            self.stage = ORACLE.physical(self.name, self.side)
            self.control.run(ORACLE.prepare(self.schema, self.name, self.columns, self.side, exists))
        self.target = self.dialect.qualified(self.schema, self.stage)

    def fail(self, why: str) -> ExportError:
        _drop_quietly(self.control, self.dialect, self.schema, self.stage)
        return ExportError(why)

    def check_and_publish(self, source: Checksums, record: Sequence[str]) -> JdbcExport:
        """The stage's checksums against the source's; published (with `record`) if they agree."""
        query = self.dialect.checksum_query(self.schema, self.stage, self.columns, source.family)
        arrived = Checksums.from_row(self.control.query(query)[0], self.columns, source.family)
        differences = source.differences(arrived)
        if differences:
            raise self.fail(f"{self.table} arrived in workspace {self.workspace.name} different from its source, "
                            f"nothing was published: {'; '.join(differences[:5])}")
        d, schema, name, record = self.dialect, self.schema, self.name, list(record)
        if self.replace is not None:
            swap = d.replace_rows(schema, name, self.stage, self.replace.column, self.replace.values, self.columns)
            self.control.run(swap + (record + [f"DROP TABLE {self.target}"] if d is POSTGRES else record))
            if d is ORACLE:
                _drop_quietly(self.control, d, schema, self.stage)
        elif d is POSTGRES:
            self.control.run(POSTGRES.publish(schema, name, self.workspace.role) + record)
        else:
            self.control.run(ORACLE.publish(schema, name, self.side, self.workspace.role, self.previous) + record)
        return JdbcExport(f"{schema}.{name}" if schema else name, source.rows, source)


def _load(df: DataFrame, stage: _Stage, login: Credentials, what: str) -> None:
    try:
        _rows(df, stage.dialect, stage.columns).write.format("jdbc").options(
            **jdbc_options(stage.workspace, login, stage.target)).mode("append").save()
    except Exception as e:  # noqa: BLE001 - the stage is never published; say why, without values
        raise stage.fail(f"loading {what} into workspace {stage.workspace.name} failed, nothing was published "
                         f"(a re-run starts again): {reason(e)}") from None


def export_table(df: DataFrame, table: str, columns: Sequence[Column], workspace: Workspace, login: Credentials,
                 progress: Callable[[str], None] = log.info, *, replace: Replace | None = None,
                 record: Sequence[str] = (), family: str | None = None, expect_rows: int | None = None) -> JdbcExport:
    """Load `df` as `table` of the workspace's schema, checked against the source before
    readers see it. Returns what was published with its checksums.

    `replace`: only those rows of the existing table are replaced (in one transaction), the rest
    stays. `record`: statements run with the publication (PostgreSQL: in its transaction).
    `expect_rows`: the rows the source must have (else nothing is loaded)."""
    control = Control(workspace, login)
    try:
        family = family or control.checksum_family()
        progress(f"export {table} to {workspace.kind} workspace {workspace.name}")
        stage = _Stage(control, workspace, table, columns, replace)
        # the source's checksums by a job of their own: Spark's `observe` sees no row of a JDBC
        # write (its rows go through an RDD), and a second job beside the load was no faster
        source = checksums(df, columns, family)
        if expect_rows is not None and source.rows != expect_rows:
            raise stage.fail(f"{table}: the source has {source.rows:,} rows where {expect_rows:,} were expected, "
                             "nothing was published")
        _load(df, stage, login, table)
        progress(f"export {table}: {source.rows:,} rows loaded, checking them in the database")
        return stage.check_and_publish(source, record)
    finally:
        control.close()


@dataclass(frozen=True)
class Part:
    """One table of a split load: the rows of `df` whose split column holds `value`."""

    value: str
    table: str
    record: Sequence[str] = ()
    expect_rows: int | None = None


def export_split(df: DataFrame, by: str, parts: Sequence[Part], columns: Sequence[Column], workspace: Workspace,
                 login: Credentials, family: str, bulk: str,
                 done: Callable[[Part, JdbcExport | ExportError], None]) -> None:
    """Several tables from one frame (a per-year table each year of `df`'s column `by`): one
    Spark load of every row into the workspace's `bulk` table, checked as a whole against the
    source's checksums (one Spark pass); then, per part, in the database, its stage
    filled from the bulk table, checked against the bulk table's rows of that value (one grouped
    query gives them all) and published as `export_table` does. `done` hears each part's outcome."""
    dialect = DIALECTS[workspace.kind]
    schema = workspace.schema or ""
    key = Column(by, "text", 16)
    empty = Checksums(0, {c.name: (0, 0) for c in columns}, family)
    control = Control(workspace, login)
    try:
        holding = _Stage(control, workspace, bulk, [*columns, key])
        rows = df.select(*[c.name for c in columns], by)
        source = checksums(rows, columns, family)
        _load(rows, holding, login, bulk)
        grouped = control.query(dialect.checksum_query(schema, holding.stage, columns, family, by))
        held = {str(r[0]): Checksums.from_row(r[1:], columns, family) for r in grouped}
        differences = source.differences(sum(held.values(), empty))
        if differences:
            raise holding.fail(f"{bulk} arrived in workspace {workspace.name} different from its source, nothing "
                               f"was published: {'; '.join(differences[:5])}")
        if any(v not in {p.value for p in parts} for v in held):
            raise holding.fail(f"{bulk}: the frame holds values of {by} no part asks for")
        names = ", ".join(dialect.ident(c.name) for c in columns)
        for part in parts:
            try:
                expected = held.get(part.value, empty)
                stage = _Stage(control, workspace, part.table, columns)
                if part.expect_rows is not None and expected.rows != part.expect_rows:
                    raise stage.fail(f"{part.table}: the source has {expected.rows:,} rows where "
                                     f"{part.expect_rows:,} were expected, nothing was published")
                control.run([f"INSERT INTO {stage.target} ({names}) SELECT {names} FROM {holding.target} "
                             f"WHERE {dialect.ident(by)} = '{plain_value(part.value)}'"])
                done(part, stage.check_and_publish(expected, part.record))
            except ExportError as e:
                done(part, e)
            except Exception as e:  # noqa: BLE001 - one part's fault stops only that part; said without values
                control.conn.rollback()
                done(part, ExportError(f"{part.table}: {reason(e)}, nothing was published"))
        _drop_quietly(control, dialect, schema, holding.stage)
    finally:
        control.close()


def _oracle_has(control: Control, schema: str, table: str) -> bool:
    return bool(control.query(f"SELECT 1 FROM ALL_TABLES WHERE OWNER = '{ORACLE.normal(schema)}' "
                              f"AND TABLE_NAME = '{table}'"))


def _oracle_sides(control: Control, schema: str, name: str) -> tuple[str, str | None, bool]:
    """(side to load, side published now or None, whether the side to load exists)."""
    owner = ORACLE.normal(schema)
    pointed = control.query(f"SELECT TABLE_NAME FROM ALL_SYNONYMS WHERE OWNER = '{owner}' AND SYNONYM_NAME = '{name}'")
    tables = {r[0] for r in control.query(f"SELECT TABLE_NAME FROM ALL_TABLES WHERE OWNER = '{owner}' "
                                          f"AND TABLE_NAME IN ('{name}', '{name}__A', '{name}__B')")}
    if name in tables:
        raise ExportError(f"{schema}.{name} is a table, not the synonym an export publishes: rename or drop it")
    current = pointed[0][0] if pointed else None
    previous = "A" if current == f"{name}__A" else "B" if current == f"{name}__B" else None
    side = "B" if previous == "A" else "A"
    return side, previous, ORACLE.physical(name, side) in tables


def _drop_quietly(control: Control, dialect, schema: str, stage: str) -> None:
    try:
        control.run([f"DROP TABLE {dialect.qualified(schema, stage)}" + (" PURGE" if dialect is ORACLE else "")])
    except Exception:  # noqa: BLE001 - the next run drops it anyway
        log.warning("could not drop %s.%s: the next run will", schema, stage)


def arrived(workspace: Workspace, login: Credentials, table: str, columns: Sequence[Column],
            family: str) -> Checksums:
    """The checksums of a published table, recomputed by the database."""
    dialect = DIALECTS[workspace.kind]
    control = Control(workspace, login)
    try:
        query = dialect.checksum_query(workspace.schema or "", table, columns, family)
        return Checksums.from_row(control.query(query)[0], columns, family)
    finally:
        control.close()
