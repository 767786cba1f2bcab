"""Typed settings read from conf/pds.toml, validated at start.

Every bad value stops with a SettingsError naming the key and the file it came
from (or `--set` on the command line).

Two kinds of settings. The **platform settings file** (`$PDS_SETTINGS`, set by the
deployment, or the installation's conf/pds.toml) holds every rule: paths of the
warehouse, key store and outbox, the access and pseudonymisation policies, thresholds.
It must belong to the installation's owner (or root) and be writable by nobody else.
A run may change the **job settings** (`JOB_SETTINGS`) with `--set` or `--settings`;
changing a platform setting for one run is for administrators only (the job runner
checks it and audits it).
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pds_spark.errors import SettingsError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = REPO_ROOT / "conf" / "pds.toml"
LOG_LEVELS = ("ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF")
# what a run may change for itself; every other key is a platform setting
JOB_SETTINGS = frozenset({"spark.master", "spark.log_level", "ingest.parallel", "storage.parallel",
                          "mirror.parallel"})


def _rule(**kw: Any) -> Any:
    """A dataclass field with validation metadata (min, max, choices, must_exist)."""
    default = kw.pop("default", dataclasses.MISSING)
    return field(default=default, metadata=kw)


@dataclass(frozen=True, kw_only=True)
class PathSettings:
    catalog: Path = _rule(must_exist=True)
    catalog_overrides: Path = _rule(must_exist=True)
    nomenclatures: Path = _rule(must_exist=True)
    names: Path = _rule(must_exist=True)
    warehouse: Path = _rule()
    work: Path = _rule()


@dataclass(frozen=True, kw_only=True)
class SparkSettings:
    master: str = _rule(default="local[*]")
    jars: Path = _rule()
    defaults: Path = _rule(must_exist=True)
    log_level: str = _rule(default="WARN", choices=LOG_LEVELS)


@dataclass(frozen=True, kw_only=True)
class IngestSettings:
    max_quarantine_ratio: float = _rule(default=0.01, min=0.0, max=1.0)
    rules: Path = _rule(must_exist=True)
    parallel: int = _rule(default=2, min=1, max=64)


@dataclass(frozen=True, kw_only=True)
class QualitySettings:
    # foreign keys checked beyond the catalogue's
    rules: Path = _rule(default=REPO_ROOT / "conf" / "quality.toml", must_exist=True)
    # a period that lost more than this share of its rows since its previous check: an error
    max_period_loss: float = _rule(default=0.5, min=0.0, max=1.0)
    # a period that grew by more than this share (1.0: doubled): a warning
    max_period_growth: float = _rule(default=1.0, min=0.0, max=1000.0)
    # a null rate or code-list miss rate further from its previous checks than this many
    # standard deviations, and by at least drift_min_change, is a warning (drift)
    drift_sigmas: float = _rule(default=3.0, min=0.5, max=100.0)
    drift_min_change: float = _rule(default=0.05, min=0.0, max=1.0)
    drift_min_runs: int = _rule(default=3, min=2, max=100)  # previous checks needed to judge
    drift_runs: int = _rule(default=12, min=2, max=100)  # previous checks drawn and compared
    parallel: int = _rule(default=1, min=1, max=64)  # checks at a time (each broadcasts its tables' code lists)


@dataclass(frozen=True, kw_only=True)
class PseudonymisationSettings:
    policy: Path = _rule(must_exist=True)
    keystore: Path = _rule()
    unlock: str = _rule(default="env:PDS_KEYSTORE_SECRET")


@dataclass(frozen=True, kw_only=True)
class AccessSettings:
    # second_admin: a grant an administrator makes for themself waits for another one
    self_grant: str = _rule(default="second_admin", choices=("second_admin", "never", "allowed"))
    outbox: Path = _rule()


@dataclass(frozen=True, kw_only=True)
class DisclosureSettings:
    # tables of counts: cells of 1 to small_cell people are suppressed (SNDS, CASD: 10)
    small_cell: int = _rule(default=10, min=1, max=1000)
    # record-level extracts: the risk gate (pds_spark.disclosure.risk)
    min_k: int = _rule(default=5, min=1, max=1000)
    max_unique_share: float = _rule(default=0.0, min=0.0, max=1.0)
    min_l: int = _rule(default=2, min=1, max=1000)
    # columns an outsider may know, beyond the policy's quasi-identifier categories (comma-separated)
    quasi_identifiers: str = _rule(default="BEN_SEX_COD,BEN_NAI_ANN,BEN_RES_DPT,BEN_RES_REG,COD_SEX,AGE_ANN,BDI_DEP")

    @property
    def quasi_columns(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.quasi_identifiers.split(",") if c.strip())


@dataclass(frozen=True, kw_only=True)
class ExportSettings:
    # the workspaces an export may go to (pds_spark.export.workspaces)
    workspaces: Path = _rule(default=REPO_ROOT / "conf" / "workspaces.toml", must_exist=True)
    # where an export goes when the request names none
    default_workspace: str = _rule(default="workspace")


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    # hours a replaced file stays readable (Delta time travel) before VACUUM removes it, per area;
    # snds keeps the longest (an extract's source version is kept beyond it anyway)
    snds_retention_hours: float = _rule(default=720.0, min=0.0, max=87600.0)
    events_retention_hours: float = _rule(default=168.0, min=0.0, max=87600.0)
    projects_retention_hours: float = _rule(default=168.0, min=0.0, max=87600.0)
    quarantine_retention_hours: float = _rule(default=168.0, min=0.0, max=87600.0)
    # days a quarantined line's raw text is kept for investigation (its reasons and counts stay)
    quarantine_raw_days: float = _rule(default=90.0, min=0.0, max=3650.0)
    parallel: int = _rule(default=2, min=1, max=64)  # tables maintained at a time

    def retention(self) -> dict[str, float]:
        return {"snds": self.snds_retention_hours, "events": self.events_retention_hours,
                "projects": self.projects_retention_hours, "quarantine": self.quarantine_retention_hours}


@dataclass(frozen=True, kw_only=True)
class MirrorSettings:
    # the databases the warehouse may be mirrored into (pds_spark.export.workspaces' format)
    targets: Path = _rule(default=REPO_ROOT / "conf" / "mirrors.toml", must_exist=True)
    # the target the pipeline mirrors into after ingestion ("none": no mirror)
    target: str = _rule(default="none")
    # the platform's lineage columns (_source_file, _delivery_id, _loaded_at) mirrored as PDS_*
    lineage: str = _rule(default="drop", choices=("keep", "drop"))
    parallel: int = _rule(default=2, min=1, max=64)  # tables sent at a time


@dataclass(frozen=True)
class Settings:
    source: str
    paths: PathSettings
    spark: SparkSettings
    ingest: IngestSettings
    quality: QualitySettings
    pseudonymisation: PseudonymisationSettings
    access: AccessSettings
    disclosure: DisclosureSettings = field(default_factory=DisclosureSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    mirror: MirrorSettings = field(default_factory=MirrorSettings)
    overrides: dict = field(default_factory=dict, compare=False)  # the --set of this run

    def value(self, dotted: str) -> Any:
        section, _, key = dotted.partition(".")
        return getattr(getattr(self, section), key)

    def platform_changes(self, platform: Settings) -> dict[str, Any]:
        """The platform settings (not `JOB_SETTINGS`) whose value here differs from `platform`'s."""
        return {dotted: self.value(dotted) for dotted in sorted(self.overrides)
                if dotted not in JOB_SETTINGS and self.value(dotted) != platform.value(dotted)}


SECTIONS = {"paths": PathSettings, "spark": SparkSettings, "ingest": IngestSettings, "quality": QualitySettings,
            "pseudonymisation": PseudonymisationSettings, "access": AccessSettings, "disclosure": DisclosureSettings,
            "export": ExportSettings, "storage": StorageSettings, "mirror": MirrorSettings}


def _convert(value: Any, f: dataclasses.Field, base: Path, where: str, key: str) -> Any:
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    rules = f.metadata
    if kind == "Path":
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            raise SettingsError(where, key, f"expected a path, got {value!r}")
        path = Path(value)
        path = (path if path.is_absolute() else base / path).resolve()
        if rules.get("must_exist") and not path.exists():
            raise SettingsError(where, key, f"path does not exist: {path}")
        return path
    if kind == "float":
        if isinstance(value, bool):
            raise SettingsError(where, key, f"expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SettingsError(where, key, f"expected a number, got {value!r}") from None
        lo, hi = rules.get("min"), rules.get("max")
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise SettingsError(where, key, f"{number} is outside [{lo}, {hi}]")
        return number
    if kind == "int":
        if isinstance(value, bool) or not str(value).lstrip("-").isdigit():
            raise SettingsError(where, key, f"expected a whole number, got {value!r}")
        number = int(value)
        lo, hi = rules.get("min"), rules.get("max")
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise SettingsError(where, key, f"{number} is outside [{lo}, {hi}]")
        return number
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise SettingsError(where, key, f"expected a non-empty string, got {value!r}")
        choices = rules.get("choices")
        if choices and value not in choices:
            raise SettingsError(where, key, f"{value!r} is not one of {', '.join(choices)}")
        return value
    raise SettingsError(where, key, f"internal: unsupported setting type {kind}")


def read_toml(path: str | os.PathLike, what: str, sections: tuple[str, ...]) -> dict:
    """A TOML file's content; a missing file, bad TOML or unknown section is a
    SettingsError naming the file (and the section)."""
    path, where = Path(path), str(path)
    if not path.is_file():
        raise SettingsError(where, "-", f"{what} not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise SettingsError(where, "-", f"not valid TOML: {e}") from None
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise SettingsError(where, unknown[0], f"unknown section (known: {', '.join(sections)})")
    return raw


def platform_file() -> Path:
    """Where the platform settings live: `$PDS_SETTINGS` (the deployment's) or conf/pds.toml."""
    return Path(os.environ.get("PDS_SETTINGS") or DEFAULT_FILE).resolve()


def installation_owner() -> int:
    """The uid that owns the installation (its conf/pds.toml, else its folder)."""
    root = next((p for p in Path(__file__).resolve().parents if (p / "conf" / "pds.toml").is_file()), REPO_ROOT)
    return (root / "conf" / "pds.toml").stat().st_uid if (root / "conf" / "pds.toml").is_file() else root.stat().st_uid


def check_platform_file(path: Path) -> None:
    """Refuse a platform settings file that someone other than the installation's owner (or
    root) owns or may write: whoever writes it chooses the rules every job applies."""
    try:
        info = path.stat()
    except OSError:
        raise SettingsError(str(path), "-", "settings file not found") from None
    owners = {0, installation_owner()}
    if info.st_uid not in owners:
        raise SettingsError(str(path), "-", f"a platform settings file must belong to the installation's owner "
                                            f"(uid {installation_owner()}) or root, not uid {info.st_uid}")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SettingsError(str(path), "-", "a platform settings file must not be writable by group or others "
                                            "(chmod go-w)")


def job_settings_file(path: str | os.PathLike) -> dict[str, Any]:
    """A `--settings` file as dotted overrides (the same sections as pds.toml)."""
    raw = read_toml(path, "settings file", tuple(SECTIONS))
    flat = {}
    for section, keys in raw.items():
        if not isinstance(keys, dict):
            raise SettingsError(str(path), section, "expected a [section]")
        flat.update({f"{section}.{k}": v for k, v in keys.items()})
    return flat


def load_settings(path: str | os.PathLike | None = None,
                  overrides: Mapping[str, Any] | None = None,
                  origins: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; `overrides` maps 'section.key' to a value, `origins` names
    where each came from (default '--set'). Without `path`: the platform settings file."""
    path = Path(path).resolve() if path else platform_file()
    where = str(path)
    raw = read_toml(path, "settings file", tuple(SECTIONS))
    origin: dict[str, str] = {}
    values: dict[str, dict[str, Any]] = {s: dict(raw.get(s, {})) for s in SECTIONS}
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        source = (origins or {}).get(dotted, "--set")
        if section not in SECTIONS or not key:
            raise SettingsError(source, dotted, "expected section.key with a known section")
        values[section][key] = value
        origin[dotted] = source

    built = {}
    for section, cls in SECTIONS.items():
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in values[section]:
            if key not in fields:
                src = origin.get(f"{section}.{key}", where)
                raise SettingsError(src, f"{section}.{key}",
                                    f"unknown key (known: {', '.join(fields)})")
        kwargs = {}
        for name, f in fields.items():
            dotted = f"{section}.{name}"
            src = origin.get(dotted, where)
            if name in values[section]:
                kwargs[name] = _convert(values[section][name], f, path.parent, src, dotted)
            elif f.default is dataclasses.MISSING:
                raise SettingsError(where, dotted, "missing (no default)")
        built[section] = cls(**kwargs)
    return Settings(source=where, **built, overrides=dict(overrides or {}))


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """Turn ['ingest.max_quarantine_ratio=0.1'] into a dict, refusing malformed items."""
    result = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SettingsError("--set", item, "expected KEY=VALUE")
        result[key.strip()] = value
    return result
