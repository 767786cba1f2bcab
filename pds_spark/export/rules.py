"""The SQL an Oracle export sends, checked without a server: parsed by sqlglot's Oracle
dialect, then held to the platform's rules (types and lengths, names' case, length and
quoting, reserved words, column count). `jobs/catalog.py ddl` prints and checks it."""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from pds_spark.catalog.model import Table
from pds_spark.export.columns import MAX_TEXT, target_columns
from pds_spark.export.dialects import ORACLE, ORACLE_RESERVED

NAME = re.compile(r'"([A-Z][A-Z0-9_$#]*)"')
SYNONYM = re.compile(r'CREATE OR REPLACE SYNONYM "[^"]+"\."[^"]+" FOR "[^"]+"\."[^"]+"')
TYPES = {exp.DataType.Type.VARCHAR, exp.DataType.Type.DECIMAL, exp.DataType.Type.DATE,
         exp.DataType.Type.TIMESTAMP}


def oracle_sql(table: Table, pseudonyms: Sequence[str] = (), schema: str = "PDS_WORKSPACE",
               role: str | None = "WORKSPACE_READERS") -> list[str]:
    """Every statement an export of this catalogue table sends to Oracle (`pseudonyms`: its
    columns the platform holds as pseudonyms)."""
    columns = target_columns(table.spark_schema, table, pseudonyms)
    return [*ORACLE.prepare(schema, table.name, columns, "B", exists=True),
            ORACLE.checksum_query(schema, ORACLE.physical(table.name, "B"), columns),
            *ORACLE.publish(schema, table.name, "B", role, "A")]


def _name_problems(sql: str) -> list[str]:
    out = []
    for name in NAME.findall(sql):
        if len(name.encode()) > ORACLE.max_name_bytes:
            out.append(f"name {name} is longer than {ORACLE.max_name_bytes} bytes")
    unquoted = re.sub(r'"[^"]*"|\'[^\']*\'', " ", sql)
    for word in re.findall(r"[A-Za-z_][A-Za-z0-9_$#]*", unquoted):
        if word != word.upper():
            out.append(f"unquoted {word} is not upper-case")
    return out


def _type_problems(column: str, kind: exp.DataType, text: str) -> list[str]:
    where = f"column {column}"
    if kind.this not in TYPES:
        return [f"{where}: type {text} is not one an export makes"]
    params = [str(p.this.this) if isinstance(p, exp.DataTypeParam) else "0" for p in kind.expressions]
    if kind.this == exp.DataType.Type.VARCHAR:
        if not re.fullmatch(r"VARCHAR2\([0-9]+ CHAR\)", text):
            return [f"{where}: {text} is not VARCHAR2(n CHAR)"]
        n = int(params[0])
        return [] if 1 <= n <= MAX_TEXT else [f"{where}: VARCHAR2 of {n} characters (1 to {MAX_TEXT})"]
    if kind.this == exp.DataType.Type.DECIMAL:
        if not re.fullmatch(r"NUMBER(\([0-9]+(,[0-9]+)?\))?", text):
            return [f"{where}: {text} is not NUMBER, NUMBER(p) or NUMBER(p,s)"]
        if params:
            p, s = int(params[0]), int(params[1]) if len(params) > 1 else 0
            if not (1 <= p <= 38 and 0 <= s <= p):
                return [f"{where}: NUMBER({p},{s}) outside precision 1..38, scale 0..precision"]
    return []


def check_oracle(sql: str) -> list[str]:
    """What breaks the rules in one statement (empty: fine)."""
    problems = _name_problems(sql)
    if sql.startswith("CREATE OR REPLACE SYNONYM"):
        return problems + ([] if SYNONYM.fullmatch(sql) else ["a synonym statement of an unexpected shape"])
    try:
        tree = sqlglot.parse_one(sql, read="oracle", error_level=sqlglot.ErrorLevel.RAISE)
    except ParseError as e:
        return problems + [f"not valid Oracle SQL: {str(e).splitlines()[0]}"]
    if isinstance(tree, exp.Command):
        return problems + ["not understood by the Oracle dialect"]
    if isinstance(tree, exp.Create) and tree.kind == "TABLE":
        defs = list(tree.find_all(exp.ColumnDef))
        if len(defs) > ORACLE.max_columns:
            problems.append(f"{len(defs)} columns (Oracle: {ORACLE.max_columns} at most)")
        seen = set()
        for d in defs:
            ident = d.this
            if not ident.quoted:
                problems.append(f"column {ident.name} is not quoted")
            if ident.name in seen:
                problems.append(f"column {ident.name} twice")
            seen.add(ident.name)
            kind = d.args.get("kind")
            if not isinstance(kind, exp.DataType):
                problems.append(f"column {ident.name} has no type")
                continue
            problems += _type_problems(ident.name, kind, kind.sql("oracle").replace(", ", ","))
    for ident in tree.find_all(exp.Identifier):
        if ident.name.upper() in ORACLE_RESERVED and not ident.quoted:
            problems.append(f"reserved word {ident.name} unquoted")
    return problems
