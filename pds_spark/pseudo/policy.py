"""The pseudonymisation policy (conf/pseudonymisation.toml), read and validated at start."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pds_spark.errors import SettingsError
from pds_spark.pseudo.keystore import KEY_NAME
from pds_spark.settings import read_toml

ACTIONS = ("pseudonym", "drop", "coarsen")
COARSEN_TO = ("year", "year_month", "department")


@dataclass(frozen=True)
class IdentifierRule:
    columns: tuple[str, ...]
    tables: tuple[str, ...]
    action: str
    key: str | None = None
    to: str | None = None
    format: str | None = None

    def applies(self, table: str, column: str) -> bool:
        return (column.upper() in self.columns
                and any(fnmatch.fnmatchcase(table.upper(), t.upper()) for t in self.tables))


@dataclass(frozen=True)
class ConformitySettings:
    birth_columns: tuple[str, ...] = ("*naissance*", "*birth*")
    name_share: float = 0.5
    name_min_length: int = 3
    name_min_count: int = 20

    def is_birth_column(self, column: str) -> bool:
        return any(fnmatch.fnmatchcase(column.upper(), p.upper()) for p in self.birth_columns)


@dataclass(frozen=True)
class Plan:
    """What the policy does to one table: pseudonyms by key, drops, coarsenings."""

    table: str
    pseudonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> columns
    drops: tuple[str, ...] = ()
    coarsen: tuple[tuple[str, IdentifierRule], ...] = ()

    @property
    def pseudonym_columns(self) -> list[str]:
        return [c for cols in self.pseudonyms.values() for c in cols]

    def __bool__(self) -> bool:
        return bool(self.pseudonyms or self.drops or self.coarsen)


@dataclass(frozen=True)
class Policy:
    source: str
    identifiers: tuple[IdentifierRule, ...]
    quasi_identifiers: dict[str, tuple[str, ...]]  # category -> upper-case columns
    conformity: ConformitySettings

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        where = str(path)
        raw = read_toml(path, "pseudonymisation policy", ("identifier", "quasi_identifier", "conformity"))
        rules = [_identifier(where, i, r) for i, r in enumerate(raw.get("identifier", []))]
        quasi: dict[str, tuple[str, ...]] = {}
        for i, r in enumerate(raw.get("quasi_identifier", [])):
            key = f"quasi_identifier[{i}]"
            if set(r) - {"category", "columns"} or not isinstance(r.get("category"), str):
                raise SettingsError(where, key, "expects exactly `category` (text) and `columns` (list)")
            quasi[r["category"]] = _names(where, f"{key}.columns", r.get("columns"))
        conformity = _conformity(where, raw.get("conformity", {}))
        return cls(where, tuple(rules), quasi, conformity)

    @classmethod
    def from_settings(cls, settings) -> Policy:
        return cls.load(settings.pseudonymisation.policy)

    def plan(self, table: str, columns: list[str]) -> Plan:
        """The first rule naming a column wins; columns not in the frame are ignored."""
        pseudonyms: dict[str, list[str]] = {}
        drops, coarsen = [], []
        for column in columns:
            rule = next((r for r in self.identifiers if r.applies(table, column)), None)
            if rule is None:
                continue
            if rule.action == "pseudonym" and rule.key:
                pseudonyms.setdefault(rule.key, []).append(column)
            elif rule.action == "drop":
                drops.append(column)
            else:
                coarsen.append((column, rule))
        return Plan(table, {k: tuple(v) for k, v in pseudonyms.items()}, tuple(drops), tuple(coarsen))

    def rule_for(self, table: str, column: str) -> IdentifierRule | None:
        return next((r for r in self.identifiers if r.applies(table, column)), None)

    def quasi_categories(self, columns: list[str]) -> dict[str, list[str]]:
        """category -> the columns of `columns` that carry it."""
        found: dict[str, list[str]] = {}
        for category, names in self.quasi_identifiers.items():
            hit = [c for c in columns if c.upper() in names]
            if hit:
                found[category] = hit
        return found


def _names(where: str, key: str, value) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise SettingsError(where, key, "expected a non-empty list of names")
    return tuple(v.upper() for v in value)


def _identifier(where: str, index: int, raw: dict) -> IdentifierRule:
    key = f"identifier[{index}]"
    known = {"columns", "tables", "action", "key", "to", "format"}
    if set(raw) - known:
        raise SettingsError(where, f"{key}.{sorted(set(raw) - known)[0]}", f"unknown key (known: {', '.join(sorted(known))})")
    action = raw.get("action")
    if action not in ACTIONS:
        raise SettingsError(where, f"{key}.action", f"{action!r} is not one of {', '.join(ACTIONS)}")
    tables = raw.get("tables", ["*"])
    if not isinstance(tables, list) or not tables:
        raise SettingsError(where, f"{key}.tables", "expected a non-empty list of table patterns")
    rule = IdentifierRule(_names(where, f"{key}.columns", raw.get("columns")), tuple(tables), action,
                          raw.get("key"), raw.get("to"), raw.get("format"))
    if action == "pseudonym" and not (isinstance(rule.key, str) and KEY_NAME.match(rule.key)):
        raise SettingsError(where, f"{key}.key", "a pseudonym rule needs a key name (lower-case, digits, '-')")
    if action == "coarsen" and rule.to not in COARSEN_TO:
        raise SettingsError(where, f"{key}.to", f"{rule.to!r} is not one of {', '.join(COARSEN_TO)}")
    return rule


def _conformity(where: str, raw: dict) -> ConformitySettings:
    defaults = ConformitySettings()
    values: dict[str, Any] = {}
    for name, value in raw.items():
        key = f"conformity.{name}"
        if not hasattr(defaults, name):
            raise SettingsError(where, key, "unknown key (known: birth_columns, name_share, "
                                "name_min_length, name_min_count)")
        if name == "birth_columns":
            values[name] = _names(where, key, value)
        elif name == "name_share":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise SettingsError(where, key, f"expected a share in (0, 1], got {value!r}")
            values[name] = float(value)
        else:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SettingsError(where, key, f"expected a whole number >= 0, got {value!r}")
            values[name] = value
    return ConformitySettings(**values)
