"""conf/ingest.toml: column aliases and extra quality rules, validated at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pds_spark.errors import SettingsError
from pds_spark.settings import read_toml


@dataclass(frozen=True)
class IngestRules:
    source: str
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    foreign_keys: tuple[dict, ...] = ()

    @classmethod
    def load(cls, path: str | Path) -> "IngestRules":
        where = str(path)
        raw = read_toml(path, "ingestion rules", ("aliases", "foreign_key"))
        aliases = {}
        for name, targets in raw.get("aliases", {}).items():
            if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
                raise SettingsError(where, f"aliases.{name}", "expected a non-empty list of catalogue field names")
            aliases[name.upper()] = tuple(t.upper() for t in targets)
        fks = []
        for i, fk in enumerate(raw.get("foreign_key", [])):
            need = {"table", "columns", "references", "ref_columns"}
            if set(fk) - need - {"where"} or need - set(fk):
                raise SettingsError(where, f"foreign_key[{i}]",
                                    "expects table, columns, references, ref_columns (and optional where)")
            if len(fk["columns"]) != len(fk["ref_columns"]):
                raise SettingsError(where, f"foreign_key[{i}].ref_columns", "must pair with columns one to one")
            fks.append(fk)
        return cls(where, aliases, tuple(fks))

    @classmethod
    def from_settings(cls, settings) -> "IngestRules":
        return cls.load(settings.ingest.rules)
