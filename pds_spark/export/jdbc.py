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
from pds_spark.export.dialects import DIALECTS, ORACLE, POSTGRES
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


def export_table(df: DataFrame, table: str, columns: Sequence[Column], workspace: Workspace, login: Credentials,
                 progress: Callable[[str], None] = log.info, *, replace: Replace | None = None,
                 record: Sequence[str] = (), family: str | None = None, expect_rows: int | None = None) -> JdbcExport:
    """Load `df` as `table` of the workspace's schema, checked against the source before
    readers see it. Returns what was published with its checksums.

    `replace`: only those rows of the existing table are replaced (in one transaction), the rest
    stays. `record`: statements run with the publication (PostgreSQL: in its transaction).
    `expect_rows`: the rows the source must have (else nothing is loaded)."""
    dialect = DIALECTS[workspace.kind]
    schema = workspace.schema or ""
    name = dialect.normal(table)
    control = Control(workspace, login)
    try:
        family = family or control.checksum_family()
        progress(f"export {table} to {workspace.kind} workspace {workspace.name}")
        side, previous = "", None
        if dialect is POSTGRES:
            stage = POSTGRES.stage(name)
            control.run(POSTGRES.prepare(schema, name, columns))
        elif replace is not None:
            stage = ORACLE.physical(name, "S")
            control.run(ORACLE.prepare(schema, name, columns, "S", _oracle_has(control, schema, stage)))
        else:
            side, previous, exists = _oracle_sides(control, schema, name)
            stage = ORACLE.physical(name, side)
            control.run(ORACLE.prepare(schema, name, columns, side, exists))
        target = dialect.qualified(schema, stage)
        source = checksums(df, columns, family)  # (measured: running it beside the load is slower)
        if expect_rows is not None and source.rows != expect_rows:
            _drop_quietly(control, dialect, schema, stage)
            raise ExportError(f"{table}: the source has {source.rows:,} rows where {expect_rows:,} were expected, "
                              "nothing was published")
        try:
            _rows(df, dialect, columns).write.format("jdbc").options(
                **jdbc_options(workspace, login, target)).mode("append").save()
        except Exception as e:  # noqa: BLE001 - the stage is never published; say why, without values
            _drop_quietly(control, dialect, schema, stage)
            raise ExportError(f"loading {table} into workspace {workspace.name} failed, nothing was published "
                              f"(a re-run starts again): {reason(e)}") from None
        progress(f"export {table}: {source.rows:,} rows loaded, checking them in the database")
        arrived = Checksums.from_row(control.query(dialect.checksum_query(schema, stage, columns, family))[0], columns,
                                     family)
        differences = source.differences(arrived)
        if differences:
            _drop_quietly(control, dialect, schema, stage)
            raise ExportError(f"{table} arrived in workspace {workspace.name} different from its source, nothing "
                              f"was published: {'; '.join(differences[:5])}")
        if replace is not None:
            swap = dialect.replace_rows(schema, name, stage, replace.column, replace.values, columns)
            control.run(swap + (list(record) + [f"DROP TABLE {target}"] if dialect is POSTGRES else list(record)))
            if dialect is ORACLE:
                _drop_quietly(control, dialect, schema, stage)
        elif dialect is POSTGRES:
            control.run(POSTGRES.publish(schema, name, workspace.role) + list(record))
        else:
            control.run(ORACLE.publish(schema, name, side, workspace.role, previous) + list(record))
    finally:
        control.close()
    return JdbcExport(f"{schema}.{name}" if schema else name, source.rows, source)


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
