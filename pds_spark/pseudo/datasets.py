"""The I/O edge of pseudonymisation: read a dataset, write it with its key record, re-key tables."""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from pds_spark.errors import ExitCode, PdsError
from pds_spark.pseudo.apply import PROPERTY, apply_plan, properties, pseudonym_state, rekey
from pds_spark.pseudo.hmac import pseudonymise
from pds_spark.pseudo.keystore import KeyStore
from pds_spark.pseudo.policy import Plan, Policy
from pds_spark.warehouse import table_properties

log = logging.getLogger("pds.pseudo")
FORMATS = ("csv", "parquet", "delta")


class DatasetError(PdsError):
    exit_code = ExitCode.USAGE


def guess_format(path: Path) -> str:
    if (path / "_delta_log").is_dir():
        return "delta"
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".txt", ".txt.gz")) or (path.is_dir() and any(path.glob("*.csv*"))):
        return "csv"
    return "parquet"


def read_dataset(spark: SparkSession, path: Path, fmt: str | None = None, sep: str | None = None,
                 encoding: str = "UTF-8") -> DataFrame:
    """A CSV (header, every column as text), Parquet or Delta dataset."""
    if not path.exists():
        raise DatasetError(f"input not found: {path}")
    fmt = fmt or guess_format(path)
    if fmt == "csv":
        if sep is None:
            sample = next(iter(sorted(path.glob("*.csv*")) if path.is_dir() else [path]), path)
            first = _first_line(sample, encoding)
            sep = ";" if first.count(";") > first.count(",") else ","
        return spark.read.csv(str(path), header=True, sep=sep, encoding=encoding, inferSchema=False)
    return spark.read.format(fmt).load(str(path))


def _first_line(path: Path, encoding: str) -> str:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding=encoding, errors="replace") as fh:
        return fh.readline()


def write_table(df: DataFrame, path: Path, props: dict[str, str]) -> None:
    """Create or replace the Delta table at `path`, data and properties in one commit."""
    writer = df.writeTo(f"delta.`{path}`").using("delta")
    for k, v in sorted(props.items()):
        writer = writer.tableProperty(k, v)
    writer.createOrReplace()


@dataclass(frozen=True)
class Outcome:
    frame: DataFrame
    properties: dict[str, str]
    plan: Plan
    layered: tuple[str, ...] = ()


def pseudonymise_frame(df: DataFrame, table: str, policy: Policy, keys: KeyStore,
                       already: dict[str, str] | None = None, project: str | None = None) -> Outcome:
    """Apply the policy to what is not yet pseudonymised, then a project's key over every pseudonym."""
    state = pseudonym_state(already or {})
    done = {c for s in state.values() for c in s.get("columns", "").split(",") if c}
    raw_plan = policy.plan(table, [c for c in df.columns if c not in done])
    versions = {key: keys.ensure(key).versions for key in raw_plan.pseudonyms}
    chains = {key: keys.chain(key) for key in raw_plan.pseudonyms}
    out = apply_plan(df, raw_plan, chains)
    props = {k: v for k, v in (already or {}).items() if k.startswith(PROPERTY + ".")}
    props.update(properties(raw_plan, versions))
    if not project:
        return Outcome(out, props, raw_plan)

    layered, project_props, columns = for_project_over(out, props, keys, project)
    if not columns:
        return Outcome(out, props, raw_plan)
    return Outcome(layered, project_props, raw_plan, tuple(columns))


def for_project_over(df: DataFrame, props: dict[str, str], keys: KeyStore,
                     project: str) -> tuple[DataFrame, dict[str, str], list[str]]:
    """`for_project` over the pseudonyms a table's properties record (keys, columns, versions)."""
    state = pseudonym_state(props)
    return for_project(df, {k: s["columns"].split(",") for k, s in state.items()}, keys, project,
                       {k: s["version"] for k, s in state.items()})


def for_project(df: DataFrame, pseudonyms: dict[str, list[str]], keys: KeyStore, project: str,
                versions: dict[str, str] | None = None) -> tuple[DataFrame, dict[str, str], list[str]]:
    """Every pseudonym column (key -> its columns) keyed again with the project's own key: the
    frame, the table properties that say so (over which keys and versions), the columns."""
    project_key = f"project-{project.lower()}"
    columns = [c for cols in pseudonyms.values() for c in cols if c in df.columns]
    if not columns:
        return df, {}, []
    versions = versions or {k: str(keys.info(k).versions) for k in pseudonyms}
    over = ",".join(f"{k}@{versions[k]}" for k in sorted(pseudonyms))
    info = keys.ensure(project_key)
    props = {f"{PROPERTY}.{project_key}.columns": ",".join(columns),
             f"{PROPERTY}.{project_key}.version": str(info.versions),
             f"{PROPERTY}.{project_key}.over": over}
    return pseudonymise(df, columns, keys.chain(project_key)), props, columns


def delta_tables(root: Path) -> list[Path]:
    """Every Delta table at or under `root`."""
    if (root / "_delta_log").is_dir():
        return [root]
    return sorted(p.parent for p in root.rglob("_delta_log") if p.is_dir())


def rekey_tables(spark: SparkSession, keys: KeyStore, key: str, roots: list[Path]) -> list[tuple[str, int, int]]:
    """Bring every table whose pseudonyms are under `key` to its latest version.

    Each table is rewritten in one commit with its new version recorded, so a run
    killed half-way is finished by running it again (tables already current are skipped).
    """
    latest = keys.info(key).versions
    done = []
    for root in roots:
        for path in delta_tables(root):
            props = table_properties(spark, str(path))
            state = pseudonym_state(props).get(key)
            if not state:
                continue
            current = int(state["version"])
            if current >= latest:
                continue
            columns = state["columns"].split(",")
            log.info("re-keying %s (%s) from %s@%d to @%d", path, ",".join(columns), key, current, latest)
            frame = rekey(spark.read.format("delta").load(str(path)), columns, keys.chain(key, since=current))
            props[f"{PROPERTY}.{key}.version"] = str(latest)
            write_table(frame, path, {k: v for k, v in props.items() if not k.startswith("delta.")})
            done.append((str(path), current, latest))
    return done
