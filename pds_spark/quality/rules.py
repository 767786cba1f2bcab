"""conf/quality.toml: foreign keys checked beyond the catalogue's, validated at start.

A rule with the same table, columns and reference replaces the catalogue's; `where`
narrows the rows it checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pds_spark.errors import SettingsError
from pds_spark.settings import read_toml


@dataclass(frozen=True)
class ForeignKeyRule:
    table: str
    columns: tuple[str, ...]
    references: str
    ref_columns: tuple[str, ...]
    where: str | None = None


def foreign_key_rules(path: str | Path) -> tuple[ForeignKeyRule, ...]:
    where = str(path)
    raw = read_toml(path, "quality rules", ("foreign_key",))
    rules = []
    need = {"table", "columns", "references", "ref_columns"}
    for i, fk in enumerate(raw.get("foreign_key", [])):
        if set(fk) - need - {"where"} or need - set(fk):
            raise SettingsError(where, f"foreign_key[{i}]",
                                "expects table, columns, references, ref_columns (and optional where)")
        if len(fk["columns"]) != len(fk["ref_columns"]):
            raise SettingsError(where, f"foreign_key[{i}].ref_columns", "must pair with columns one to one")
        rules.append(ForeignKeyRule(fk["table"], tuple(fk["columns"]), fk["references"], tuple(fk["ref_columns"]),
                                    fk.get("where")))
    return tuple(rules)
