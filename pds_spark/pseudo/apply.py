"""Apply the policy to a DataFrame, re-key stored pseudonyms, record what was done.

A pseudonymised Delta table says in its properties which columns hold pseudonyms
under which key and version (`pds.pseudonym.<key>.columns` / `.version`), and what
they were computed over (`.over`: a project's pseudonyms are computed over the
platform's). Rotation and conformity read these properties.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.pseudo.hmac import SecretKey, pseudonymise
from pds_spark.pseudo.policy import IdentifierRule, Plan

PROPERTY = "pds.pseudonym"


def coarsened(column: Column, dtype: T.DataType, rule: IdentifierRule) -> Column:
    """A birth date to year or year-month text, a commune to its department."""
    if rule.to == "department":
        text = F.trim(column.cast("string"))
        return F.when(text.startswith("97") | text.startswith("98"), F.substring(text, 1, 3)).otherwise(
            F.substring(text, 1, 2))
    if isinstance(dtype, (T.DateType, T.TimestampType, T.TimestampNTZType)):
        date = column
    else:
        date = F.try_to_date(F.trim(column.cast("string")), rule.format or "yyyy-MM-dd")
    return F.date_format(date, "yyyy" if rule.to == "year" else "yyyy-MM")


def apply_plan(df: DataFrame, plan: Plan, keys: Mapping[str, Sequence[SecretKey]]) -> DataFrame:
    """Drop, coarsen and pseudonymise as `plan` says (keys: key name -> its versions)."""
    kept = df.drop(*plan.drops)
    if plan.coarsen:
        types = {f.name: f.dataType for f in kept.schema.fields}
        kept = kept.withColumns({c: coarsened(F.col(c), types[c], r) for c, r in plan.coarsen})
    for key, columns in plan.pseudonyms.items():
        kept = pseudonymise(kept, columns, keys[key])
    return kept


def properties(plan: Plan, versions: Mapping[str, int], over: Mapping[str, str] | None = None) -> dict[str, str]:
    """Table properties that record the pseudonyms of `plan` (key -> version)."""
    props = {}
    for key, columns in plan.pseudonyms.items():
        props[f"{PROPERTY}.{key}.columns"] = ",".join(columns)
        props[f"{PROPERTY}.{key}.version"] = str(versions[key])
        if over and key in over:
            props[f"{PROPERTY}.{key}.over"] = over[key]
    return props


def pseudonym_state(props: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """key -> {'columns': ..., 'version': ..., 'over': ...} read back from table properties."""
    state: dict[str, dict[str, str]] = {}
    for name, value in props.items():
        if name.startswith(PROPERTY + "."):
            key, _, attribute = name[len(PROPERTY) + 1:].rpartition(".")
            state.setdefault(key, {})[attribute] = value
    return state


def pseudonym_columns(props: Mapping[str, str]) -> list[str]:
    """The columns a table's properties say hold pseudonyms."""
    return sorted({c for s in pseudonym_state(props).values() for c in s.get("columns", "").split(",") if c})


def rekey(df: DataFrame, columns: Sequence[str], new_versions: Sequence[SecretKey]) -> DataFrame:
    """Stored pseudonyms at version v to version v+n: one more HMAC per new version."""
    return pseudonymise(df, columns, new_versions)
