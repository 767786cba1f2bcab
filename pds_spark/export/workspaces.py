"""The projects' workspaces an export may go to, named in conf/workspaces.toml.

  [workspace]                 # the embedded default: Parquet files under var/
  kind = "parquet"
  path = "../var/workspaces"

  [casd-oracle]
  kind = "oracle"
  url = "jdbc:oracle:thin:@//db.example:1521/PDSWS"
  schema = "PDS_P042"
  role = "P042_READERS"       # granted SELECT on every exported table (optional)
  credentials = "file:/etc/pds/casd-oracle.toml"   # user = "...", password = "..." (mode 600)
  batch_size = 10000          # rows per JDBC batch
  connections = 2             # tables are loaded by this many connections at a time

Credentials come from `env:PREFIX` (PREFIX_USER, PREFIX_PASSWORD) or `file:PATH`, never from an
argument; they never appear in a log line, an error, the audit or Spark's plans.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pds_spark.errors import SettingsError

KINDS = ("parquet", "postgresql", "oracle")
DRIVERS = {"postgresql": "org.postgresql.Driver", "oracle": "oracle.jdbc.OracleDriver"}
URLS = {"postgresql": r"jdbc:postgresql://(?P<host>[^:/?]+)(:(?P<port>[0-9]+))?/(?P<database>[^?;]+)",
        "oracle": r"jdbc:oracle:thin:@//?(?P<host>[^:/?]+)(:(?P<port>[0-9]+))?/(?P<database>[^?;]+)"}
KEYS = {"kind", "path", "url", "schema", "role", "credentials", "batch_size", "connections"}


class Credentials:
    """A user and password; shown as the user only."""

    __slots__ = ("user", "_password")

    def __init__(self, user: str, password: str):
        self.user, self._password = user, password

    @property
    def password(self) -> str:
        return self._password

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password=<hidden>)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("credentials are not serialised")


@dataclass(frozen=True)
class Workspace:
    name: str
    kind: str
    source: str  # the file that names it
    path: Path | None = None  # parquet
    url: str | None = None  # jdbc
    schema: str | None = None
    role: str | None = None
    credentials: str | None = None  # env:PREFIX | file:PATH
    batch_size: int = 10000
    connections: int = 2

    @property
    def is_database(self) -> bool:
        return self.kind != "parquet"

    @property
    def driver(self) -> str:
        return DRIVERS[self.kind]

    def address(self) -> dict[str, str]:
        """host, port, database of the URL."""
        m = re.match(URLS[self.kind], self.url or "")
        if not m:
            raise SettingsError(self.source, f"{self.name}.url", f"not a {self.kind} JDBC URL")
        default = {"postgresql": "5432", "oracle": "1521"}[self.kind]
        return {"host": m["host"], "port": m["port"] or default, "database": m["database"]}

    def login(self) -> Credentials:
        """The credentials, read now from where the settings say."""
        where, key = self.source, f"{self.name}.credentials"
        how, _, what = (self.credentials or "").partition(":")
        if how == "env":
            user, password = os.environ.get(f"{what}_USER"), os.environ.get(f"{what}_PASSWORD")
            if not user or not password:
                raise SettingsError(where, key, f"{what}_USER and {what}_PASSWORD must both be set")
            return Credentials(user, password)
        if how == "file":
            path = Path(what)
            try:
                info = path.stat()
            except OSError:
                raise SettingsError(where, key, f"credentials file not found: {path}") from None
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise SettingsError(where, key, f"{path} may be read by others: chmod 600 it")
            try:
                raw = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                raise SettingsError(where, key, f"{path} is not a TOML file with user and password") from None
            if not isinstance(raw.get("user"), str) or not isinstance(raw.get("password"), str):
                raise SettingsError(where, key, f"{path} must hold user = \"...\" and password = \"...\"")
            return Credentials(raw["user"], raw["password"])
        raise SettingsError(where, key, "expected env:PREFIX or file:PATH")


def load_workspaces(path: str | os.PathLike) -> dict[str, Workspace]:
    """Every workspace of the file, validated; errors name the file and the key."""
    path = Path(path)
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise SettingsError(where, "-", "workspaces file not found") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise SettingsError(where, "-", f"not valid TOML: {e}") from None
    out = {}
    for name, values in raw.items():
        if not isinstance(values, dict):
            raise SettingsError(where, name, "expected a [workspace] table")
        unknown = sorted(set(values) - KEYS)
        if unknown:
            raise SettingsError(where, f"{name}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(KEYS))})")
        kind = values.get("kind")
        if kind not in KINDS:
            raise SettingsError(where, f"{name}.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
        kw: dict = {}
        for key in ("batch_size", "connections"):
            if key in values:
                v = values[key]
                if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= (1_000_000 if key == "batch_size" else 64):
                    raise SettingsError(where, f"{name}.{key}", f"expected a whole number in range, got {v!r}")
                kw[key] = v
        for key in ("path", "url", "schema", "role", "credentials"):
            if key in values and (not isinstance(values[key], str) or not values[key]):
                raise SettingsError(where, f"{name}.{key}", "expected a non-empty string")
        needed = ("path",) if kind == "parquet" else ("url", "schema", "credentials")
        for key in needed:
            if key not in values:
                raise SettingsError(where, f"{name}.{key}", f"missing (a {kind} workspace needs {', '.join(needed)})")
        if kind == "parquet":
            p = Path(values["path"])
            kw["path"] = (p if p.is_absolute() else path.parent / p).resolve()
        else:
            if "password" in values["url"].lower() or re.search(r"//[^/@]*:[^/@]*@", values["url"]):
                raise SettingsError(where, f"{name}.url", "a URL must not hold credentials (use credentials =)")
            if not re.match(URLS[kind], values["url"]):
                raise SettingsError(where, f"{name}.url", f"not a {kind} JDBC URL")
            how = values["credentials"].partition(":")[0]
            if how not in ("env", "file"):
                raise SettingsError(where, f"{name}.credentials", "expected env:PREFIX or file:PATH")
            kw |= {k: values[k] for k in ("url", "schema", "role", "credentials") if k in values}
        out[name] = Workspace(name=name, kind=kind, source=where, **kw)
    return out
