"""Where a mirror stands, kept in the target schema itself (table `PDS_MIRROR`): a row a
(table, period) with the Delta version, rows and columns mirrored. A unit's rows are written
with its publication (PostgreSQL: in the same transaction), so the state can never claim a
table the schema does not hold, and a crashed run resumes where it stopped."""

from __future__ import annotations

from pds_spark.export.columns import Column
from pds_spark.export.dialects import POSTGRES, Dialect
from pds_spark.export.jdbc import Control
from pds_spark.mirror.plan import Mirrored, Unit

TABLE = "PDS_MIRROR"
COLUMNS = [Column("SOURCE_TABLE", "text", 128), Column("PERIOD", "text", 16), Column("TARGET_TABLE", "text", 128),
           Column("DELTA_VERSION", "integer", 18), Column("ROW_COUNT", "integer", 18),
           Column("COLUMNS_SIG", "text", 64), Column("MIRRORED_AT", "timestamp")]


def ensure(control: Control, dialect: Dialect, schema: str) -> None:
    """The state table, created the first time."""
    if dialect is POSTGRES:
        control.run([dialect.create_table(schema, TABLE, COLUMNS).replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS",
                                                                           1)])
        return
    owner, name = dialect.normal(schema), dialect.normal(TABLE)
    if not control.query(f"SELECT 1 FROM ALL_TABLES WHERE OWNER = '{owner}' AND TABLE_NAME = '{name}'"):
        control.run([dialect.create_table(schema, TABLE, COLUMNS)])


def read(control: Control, dialect: Dialect, schema: str) -> dict[tuple[str, str], Mirrored]:
    names = ", ".join(dialect.ident(c.name) for c in COLUMNS[:6])
    rows = control.query(f"SELECT {names} FROM {dialect.qualified(schema, TABLE)}")  # a row a table and period
    return {(r[0], r[1]): Mirrored(r[2], int(r[3]), int(r[4]), r[5]) for r in rows}


def record(dialect: Dialect, schema: str, unit: Unit, signature: str) -> list[str]:
    """The statements that say `unit` is mirrored."""
    table = dialect.qualified(schema, TABLE)
    periods = ", ".join(f"'{p}'" for p in unit.periods)
    out = [f"DELETE FROM {table} WHERE {dialect.ident('SOURCE_TABLE')} = '{unit.source}' "
           f"AND {dialect.ident('PERIOD')} IN ({periods})"]
    names = ", ".join(dialect.ident(c.name) for c in COLUMNS)
    for period, version, n in zip(unit.periods, unit.versions, unit.rows):
        out.append(f"INSERT INTO {table} ({names}) VALUES ('{unit.source}', '{period}', '{unit.target}', {version}, "
                   f"{n}, '{signature}', CURRENT_TIMESTAMP)")
    return out


def clear_leftovers(control: Control, dialect: Dialect, schema: str) -> list[str]:
    """Drop the stage and holding tables a stopped run left (one run at a time per target)."""
    if dialect is POSTGRES:
        found = [r[0] for r in control.query(
            f"SELECT tablename FROM pg_tables WHERE schemaname = '{dialect.normal(schema)}' "
            "AND tablename LIKE '%\\_\\_stage'")]
        control.run([f"DROP TABLE IF EXISTS {dialect.qualified(schema, t)}" for t in found])
    else:
        found = [r[0] for r in control.query(
            f"SELECT TABLE_NAME FROM ALL_TABLES WHERE OWNER = '{dialect.normal(schema)}' AND "
            "(TABLE_NAME LIKE '%\\_\\_S' ESCAPE '\\' OR TABLE_NAME LIKE '%\\_\\_BULK\\_\\_%' ESCAPE '\\')")]
        for t in found:
            control.run([f"DROP TABLE {dialect.qualified(schema, t)} PURGE"])
    return found
