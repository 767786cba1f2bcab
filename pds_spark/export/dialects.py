"""The SQL an export sends to a workspace database, as text: names, column types, the table's
DDL, the statements that swap a loaded table in, and the checksum query. Pure; Oracle's is
checked by `rules`, PostgreSQL's runs in the tests.

Names: Oracle's upper-case, PostgreSQL's lower-case (their unquoted forms), always quoted
(a reserved word stays usable), refused when invalid or too long. Never Spark's default type
mapping: the types come from `columns.Column`, itself from the catalogue.

Publication: PostgreSQL creates `<t>__stage`, loads it, and in one transaction drops the old
table and renames the stage (DDL is transactional: a reader sees the old table or the new
one). Oracle's DDL commits on its own, so its tables are `<T>__A` / `<T>__B` behind a synonym
`<T>`; `CREATE OR REPLACE SYNONYM` moves readers from one to the other at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pds_spark.export.columns import MAX_TEXT, Column, ExportError

# Oracle's reserved words (SQL Language Reference, "Oracle SQL Reserved Words")
ORACLE_RESERVED = frozenset("""
ACCESS ADD ALL ALTER AND ANY AS ASC AUDIT BETWEEN BY CHAR CHECK CLUSTER COLUMN COMMENT COMPRESS
CONNECT CREATE CURRENT DATE DECIMAL DEFAULT DELETE DESC DISTINCT DROP ELSE EXCLUSIVE EXISTS FILE
FLOAT FOR FROM GRANT GROUP HAVING IDENTIFIED IMMEDIATE IN INCREMENT INDEX INITIAL INSERT INTEGER
INTERSECT INTO IS LEVEL LIKE LOCK LONG MAXEXTENTS MINUS MLSLABEL MODE MODIFY NOAUDIT NOCOMPRESS NOT
NOWAIT NULL NUMBER OF OFFLINE ON ONLINE OPTION OR ORDER PCTFREE PRIOR PUBLIC RAW RENAME RESOURCE
REVOKE ROW ROWID ROWNUM ROWS SELECT SESSION SET SHARE SIZE SMALLINT START SUCCESSFUL SYNONYM SYSDATE
TABLE THEN TO TRIGGER UID UNION UNIQUE UPDATE USER VALIDATE VALUES VARCHAR VARCHAR2 VIEW WHENEVER
WHERE WITH""".split())
MD5_PREFIX = 15  # hex digits of an MD5 summed per column: 60 bits, exact in every database's integers
# Per-column checksum hashes: CRC-32 where the database computes it (PostgreSQL 18 on: zlib's,
# as Spark's `crc32`), else the first 60 bits of the MD5 (Oracle's STANDARD_HASH, any PostgreSQL)
FAMILIES = ("crc32", "md5")


def plain_value(value: str) -> str:
    """A value written into SQL text as a literal: letters, digits, _ and - only (a period)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise ExportError(f"{value!r} is not a plain value (letters, digits, _ and - only)")
    return value


@dataclass(frozen=True)
class Dialect:
    name: str
    max_name_bytes: int
    max_columns: int
    upper: bool
    valid_name: str  # the unquoted form's shape

    def normal(self, name: str) -> str:
        """A platform name as the database holds it (checked)."""
        out = name.upper() if self.upper else name.lower()
        if not re.fullmatch(self.valid_name, out):
            raise ExportError(f"{name!r} cannot be a {self.name} name (letters, digits, _; a letter first)")
        if len(out.encode()) > self.max_name_bytes:
            raise ExportError(f"{name!r} is longer than {self.name}'s {self.max_name_bytes} bytes")
        return out

    def ident(self, name: str) -> str:
        return '"' + self.normal(name) + '"'

    def qualified(self, schema: str, name: str) -> str:
        return f"{self.ident(schema)}.{self.ident(name)}"

    # -- types --------------------------------------------------------------------------------
    def column_type(self, c: Column) -> str:
        raise NotImplementedError

    def create_table(self, schema: str, table: str, columns: Sequence[Column]) -> str:
        if not columns:
            raise ExportError(f"{table}: no column to export")
        if len(columns) > self.max_columns:
            raise ExportError(f"{table}: {len(columns)} columns, more than {self.name}'s {self.max_columns}")
        names = [self.normal(c.name) for c in columns]
        if len(set(names)) != len(names):
            raise ExportError(f"{table}: two columns have the same {self.name} name")
        body = ",\n  ".join(f"{self.ident(c.name)} {self.column_type(c)}" for c in columns)
        return f"CREATE TABLE {self.qualified(schema, table)} (\n  {body}\n)"

    def replace_rows(self, schema: str, table: str, stage: str, column: str, values: Sequence[str],
                     columns: Sequence[Column]) -> list[str]:
        """The rows of `table` whose `column` is in `values` replaced by the stage's rows (one
        transaction's DML: readers see the old rows or the new ones)."""
        if not values:
            raise ExportError(f"{table}: rows to replace need plain values of {column}")
        target, names = self.qualified(schema, table), ", ".join(self.ident(c.name) for c in columns)
        listed = ", ".join(f"'{plain_value(v)}'" for v in values)
        return [f"DELETE FROM {target} WHERE {self.ident(column)} IN ({listed})",
                f"INSERT INTO {target} ({names}) SELECT {names} FROM {self.qualified(schema, stage)}"]

    # -- checksums ----------------------------------------------------------------------------
    def canonical(self, c: Column) -> str:
        """The column's value as the text every side hashes (pds_spark.export.checksum)."""
        raise NotImplementedError

    def hashed(self, text: str, family: str) -> str:
        raise NotImplementedError

    def checksum_query(self, schema: str, table: str, columns: Sequence[Column], family: str = "md5",
                       by: str | None = None) -> str:
        """One row: the row count, then per column its non-null count and the sum of its hashes
        (with `by`: one row a value of that column, the value first)."""
        parts = ["COUNT(*)"]
        for c in columns:
            text = self.canonical(c)
            parts += [f"COUNT({text})", f"COALESCE(SUM({self.hashed(text, family)}), 0)"]
        if by is None:
            return f"SELECT {', '.join(parts)} FROM {self.qualified(schema, table)}"
        return (f"SELECT {self.ident(by)}, {', '.join(parts)} FROM {self.qualified(schema, table)} "
                f"GROUP BY {self.ident(by)}")


class Postgres(Dialect):
    def __init__(self):
        super().__init__("postgresql", 63, 1600, False, r"[a-z_][a-z0-9_]*")

    def column_type(self, c: Column) -> str:
        if c.kind == "text":
            return f"varchar({c.length})" if c.length else "text"
        if c.kind == "integer":
            n = c.length or 19
            return "integer" if n <= 9 else "bigint" if n <= 18 else f"numeric({min(n, 1000)})"
        if c.kind == "decimal":
            return f"numeric({c.precision},{c.scale})"
        return {"float": "double precision", "date": "date", "timestamp": "timestamp",
                "boolean": "boolean"}[c.kind]

    def canonical(self, c: Column) -> str:
        col = self.ident(c.name)
        return {"text": f"NULLIF({col}, '')", "integer": f"{col}::text", "decimal": f"{col}::text",
                "float": f"round({col}::numeric, 6)::text", "date": f"{col}::text",  # ISO DateStyle: jdbc.Control sets it
                "timestamp": f"to_char({col}, 'YYYY-MM-DD HH24:MI:SS')",
                "boolean": f"CASE WHEN {col} THEN '1' WHEN NOT {col} THEN '0' END"}[c.kind]

    def hashed(self, text: str, family: str) -> str:
        if family == "crc32":
            return f"crc32(convert_to({text}, 'UTF8'))"
        return f"('x' || substr(md5({text}), 1, {MD5_PREFIX}))::bit({4 * MD5_PREFIX})::bigint"

    def stage(self, table: str) -> str:
        return self.normal(f"{table}__stage")

    def prepare(self, schema: str, table: str, columns: Sequence[Column]) -> list[str]:
        """Statements that make an empty stage table, whatever a crashed run left."""
        stage = self.stage(table)
        return [f"DROP TABLE IF EXISTS {self.qualified(schema, stage)}", self.create_table(schema, stage, columns)]

    def publish(self, schema: str, table: str, role: str | None) -> list[str]:
        """One transaction: the stage becomes the table (granted to the workspace's role)."""
        stage = self.stage(table)
        grant = [f"GRANT SELECT ON {self.qualified(schema, stage)} TO {self.ident(role)}"] if role else []
        return grant + [f"DROP TABLE IF EXISTS {self.qualified(schema, table)}",
                        f"ALTER TABLE {self.qualified(schema, stage)} RENAME TO {self.ident(table)}"]


class Oracle(Dialect):
    def __init__(self):
        super().__init__("oracle", 128, 1000, True, r"[A-Z][A-Z0-9_$#]*")

    def column_type(self, c: Column) -> str:
        if c.kind == "text":
            return f"VARCHAR2({min(c.length or MAX_TEXT, MAX_TEXT)} CHAR)"
        if c.kind == "integer":
            return f"NUMBER({min(c.length or 38, 38)})"
        if c.kind == "decimal":
            return f"NUMBER({c.precision},{c.scale})"
        return {"float": "NUMBER", "date": "DATE", "timestamp": "TIMESTAMP", "boolean": "NUMBER(1)"}[c.kind]

    @staticmethod
    def _number_format(digits: int, scale: int) -> str:
        whole = max(digits - scale, 1)
        return "FM" + "9" * (whole - 1) + "0" + ("." + "0" * scale if scale else "")

    def canonical(self, c: Column) -> str:
        col = self.ident(c.name)
        if c.kind == "decimal" and c.scale:
            return f"TO_CHAR({col}, '{self._number_format(c.precision or 38, c.scale)}')"
        return {"text": col, "integer": f"TO_CHAR({col})", "decimal": f"TO_CHAR({col})",
                "float": f"TO_CHAR(ROUND({col}, 6), '{self._number_format(38, 6)}')",
                "date": f"TO_CHAR({col}, 'YYYY-MM-DD')", "timestamp": f"TO_CHAR({col}, 'YYYY-MM-DD HH24:MI:SS')",
                "boolean": f"TO_CHAR({col})"}[c.kind]  # Oracle holds '' as NULL already

    def hashed(self, text: str, family: str) -> str:
        if family != "md5":
            raise ExportError(f"Oracle has no {family} function: its checksums use MD5")
        return (f"TO_NUMBER(SUBSTR(RAWTOHEX(STANDARD_HASH({text}, 'MD5')), 1, {MD5_PREFIX}), "
                f"'{'X' * MD5_PREFIX}')")

    def physical(self, table: str, side: str) -> str:
        return self.normal(f"{table}__{side}")

    def prepare(self, schema: str, table: str, columns: Sequence[Column], side: str, exists: bool) -> list[str]:
        """The side not behind the synonym, emptied and created again."""
        target = self.physical(table, side)
        drop = [f"DROP TABLE {self.qualified(schema, target)} PURGE"] if exists else []
        return drop + [self.create_table(schema, target, columns)]

    def publish(self, schema: str, table: str, side: str, role: str | None, previous: str | None) -> list[str]:
        """Readers moved to the loaded side at once; the previous side dropped after."""
        target = self.physical(table, side)
        grant = [f"GRANT SELECT ON {self.qualified(schema, target)} TO {self.ident(role)}"] if role else []
        swap = [f"CREATE OR REPLACE SYNONYM {self.qualified(schema, table)} FOR {self.qualified(schema, target)}"]
        drop = [f"DROP TABLE {self.qualified(schema, self.physical(table, previous))} PURGE"] if previous else []
        return grant + swap + drop


POSTGRES = Postgres()
ORACLE = Oracle()
DIALECTS = {"postgresql": POSTGRES, "oracle": ORACLE}
