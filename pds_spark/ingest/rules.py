"""conf/ingest.toml: the column aliases a delivery may use, validated at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pds_spark.errors import SettingsError
from pds_spark.settings import read_toml


@dataclass(frozen=True)
class IngestRules:
    source: str
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> IngestRules:
        where = str(path)
        raw = read_toml(path, "ingestion rules", ("aliases",))
        aliases = {}
        for name, targets in raw.get("aliases", {}).items():
            if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
                raise SettingsError(where, f"aliases.{name}", "expected a non-empty list of catalogue field names")
            aliases[name.upper()] = tuple(t.upper() for t in targets)
        return cls(where, aliases)
