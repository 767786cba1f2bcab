"""A linkage spec: the inputs' id columns, the blocking rules, the comparisons and their
levels, the limits and thresholds. Written in conf/linkage/*.toml or built in Python (the
same object); checked when loaded, with errors that name the file and the key, and against
the inputs before anything runs."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pds_spark.errors import SettingsError
from pds_spark.linkage.blocking import BlockingRule
from pds_spark.linkage.comparisons import KINDS, Comparison, LinkageError, compared_columns
from pds_spark.sqltext import quoted

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class LinkageSpec:
    name: str
    left_id: str
    right_id: str
    blocking: tuple[BlockingRule, ...] = ()
    comparisons: tuple[Comparison, ...] = ()
    direct: tuple[str, str] | None = None  # (left column, right column) holding the same identifier
    cascade: tuple[tuple[str, ...], ...] = ()  # criteria of each deterministic pass, the strictest first
    one_to_one: bool = True  # a record linked to at most one other, its best (the probabilistic step)
    max_pairs: int = 50_000_000
    max_block_share: float = 0.5
    threshold: float = 0.9  # match probability from which a pair is a link
    u_sample_pairs: int = 1_000_000
    seed: int = 42
    em_iterations: int = 100
    clusters: bool = False  # the links gain `cluster`: their connected component (one_to_one off: chains)
    right_id_repeats: bool = False  # the right input may give an id several rows (a person, each of their stays)
    rename_left: tuple[tuple[str, str], ...] = ()  # (input column, the spec's name) before anything else
    rename_right: tuple[tuple[str, str], ...] = ()
    training: tuple[BlockingRule, ...] = ()  # the EM sessions' rules, when not the blocking rules

    @property
    def training_rules(self) -> tuple[BlockingRule, ...]:
        """One EM session a rule: `training` if given, else the blocking rules."""
        return self.training or self.blocking

    @property
    def steps(self) -> list[str]:
        return [s for s, on in (("direct", self.direct), ("cascade", self.cascade),
                                ("probabilistic", self.comparisons)) if on]

    @property
    def columns(self) -> list[str]:
        """The columns both inputs need (besides their ids and the direct step's)."""
        return sorted(set(compared_columns(self.comparisons)).union(
            *[r.columns for r in (*self.blocking, *self.training)], *self.cascade))

    def check_inputs(self, left: DataFrame, right: DataFrame) -> None:
        """Every named column on both sides, and ids that name one row each (the right's may
        name several when the spec says so: a pair's level is then the best over its rows)."""
        for side, df, id_column in (("left", left, self.left_id), ("right", right, self.right_id)):
            own = [self.direct[0 if side == "left" else 1]] if self.direct else []
            missing = [c for c in [id_column, *own, *self.columns] if c not in df.columns]
            if missing:
                raise LinkageError(f"linkage {self.name}: the {side} input has no column {', '.join(missing)} "
                                   f"(it has {', '.join(df.columns)})")
            if side == "right" and self.right_id_repeats:
                continue
            twice = (df.groupBy(F.col(quoted(id_column))).count().where("count > 1")
                     .agg(F.count(F.lit(1)).alias("ids"), F.sum("count").alias("rows")).first())
            if twice and twice["ids"]:
                raise LinkageError(f"linkage {self.name}: the {side} input's id column {id_column} is not unique "
                                   f"({twice['ids']:,} ids held by {twice['rows']:,} rows)")


def _get(table: Mapping, key: str, where: str, path: str, kind: type | tuple[type, ...], default: object = ...):
    if key not in table:
        if default is ...:
            raise SettingsError(where, f"{path}{key}", "missing")
        return default
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SettingsError(where, f"{path}{key}", f"expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _name(value: str, where: str, key: str) -> str:
    if not NAME.fullmatch(value):
        raise SettingsError(where, key, f"{value!r} is not a column name (letters, digits, _)")
    return value


def _rules(data: Mapping, section: str, where: str) -> list[BlockingRule]:
    """The rules of `[[blocking]]` or `[[training]]`: each an equality on its `columns`."""
    rules = []
    for i, rule in enumerate(_get(data, section, where, "", list, [])):
        key = f"{section}[{i}]"
        cols = _get(rule, "columns", where, f"{key}.", list)
        if not cols or not all(isinstance(c, str) for c in cols):
            raise SettingsError(where, f"{key}.columns", "expected a non-empty list of column names")
        try:
            rules.append(BlockingRule(tuple(_name(c, where, f"{key}.columns") for c in cols)))
        except LinkageError as e:
            raise SettingsError(where, f"{key}.columns", str(e)) from None
    return rules


def spec_from_mapping(data: Mapping, where: str) -> LinkageSpec:
    """The spec in `data` (a parsed TOML file), errors naming `where` and the key."""
    unknown = set(data) - {"linkage", "rename", "direct", "cascade", "blocking", "training", "comparison"}
    if unknown:
        raise SettingsError(where, sorted(unknown)[0], "unknown section (linkage, rename, direct, cascade, blocking, "
                                                       "training, comparison)")
    head = _get(data, "linkage", where, "", dict)
    known = {"name", "left_id", "right_id", "max_pairs", "max_block_share", "threshold", "u_sample_pairs", "seed",
             "em_iterations", "one_to_one", "clusters", "right_id_repeats"}
    for key in head:
        if key not in known:
            raise SettingsError(where, f"linkage.{key}", f"unknown key (one of {', '.join(sorted(known))})")
    rename = _get(data, "rename", where, "", dict, {})
    for key in rename:
        if key not in ("left", "right"):
            raise SettingsError(where, f"rename.{key}", "unknown side (left, right)")
    renames = {}
    for side in ("left", "right"):
        pairs = _get(rename, side, where, "rename.", dict, {})
        for old, new in pairs.items():
            if not isinstance(new, str):
                raise SettingsError(where, f"rename.{side}.{old}", f"expected a column name, got {new!r}")
            _name(new, where, f"rename.{side}.{old}")
        if len(set(pairs.values())) != len(pairs):
            raise SettingsError(where, f"rename.{side}", "two columns renamed to the same name")
        renames[side] = tuple(sorted(pairs.items()))
    direct = None
    if "direct" in data:
        raw = _get(data, "direct", where, "", dict)
        direct = (_name(_get(raw, "left", where, "direct.", str), where, "direct.left"),
                  _name(_get(raw, "right", where, "direct.", str), where, "direct.right"))
    cascade = []
    for i, raw in enumerate(_get(data, "cascade", where, "", list, [])):
        cols = _get(raw, "columns", where, f"cascade[{i}].", list)
        if not cols or not all(isinstance(c, str) for c in cols) or len(set(cols)) != len(cols):
            raise SettingsError(where, f"cascade[{i}].columns", "expected a non-empty list of distinct column names")
        cascade.append(tuple(_name(c, where, f"cascade[{i}].columns") for c in cols))
    rules, training = (_rules(data, section, where) for section in ("blocking", "training"))
    comparisons = []
    for i, raw in enumerate(_get(data, "comparison", where, "", list, [])):
        key = f"comparison[{i}]"
        for k in raw:
            if k not in ("name", "column", "kind", "thresholds", "swapped_day_month", "term_frequency"):
                raise SettingsError(where, f"{key}.{k}", "unknown key (name, column, kind, thresholds, "
                                                          "swapped_day_month, term_frequency)")
        kind = _get(raw, "kind", where, f"{key}.", str)
        if kind not in KINDS:
            raise SettingsError(where, f"{key}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
        column = _name(_get(raw, "column", where, f"{key}.", str), where, f"{key}.column")
        thresholds = _get(raw, "thresholds", where, f"{key}.", list, [])
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in thresholds):
            raise SettingsError(where, f"{key}.thresholds", f"expected numbers, got {thresholds!r}")
        try:
            comparisons.append(Comparison(_name(_get(raw, "name", where, f"{key}.", str, column), where, f"{key}.name"),
                                          column, kind, tuple(float(t) for t in thresholds),
                                          _get(raw, "swapped_day_month", where, f"{key}.", bool, False),
                                          _get(raw, "term_frequency", where, f"{key}.", bool, False)))
        except LinkageError as e:
            raise SettingsError(where, key, str(e)) from None
    if comparisons and not rules:
        raise SettingsError(where, "blocking", "at least one rule: without, every pair would be compared")
    if training and not comparisons:
        raise SettingsError(where, "training", "training rules but no comparison: nothing for EM to estimate")
    if rules and not comparisons:
        raise SettingsError(where, "comparison", "blocking rules but no comparison: nothing to score the pairs with")
    if not (direct or cascade or comparisons):
        raise SettingsError(where, "linkage", "no step: give [direct], [[cascade]] or [[blocking]] and [[comparison]]")
    if len({c.name for c in comparisons}) != len(comparisons):
        raise SettingsError(where, "comparison", "two comparisons have the same name")
    share = float(_get(head, "max_block_share", where, "linkage.", (int, float), 0.5))
    threshold = float(_get(head, "threshold", where, "linkage.", (int, float), 0.9))
    if not 0 < share <= 1:
        raise SettingsError(where, "linkage.max_block_share", f"expected a share in (0, 1], got {share}")
    if not 0 < threshold < 1:
        raise SettingsError(where, "linkage.threshold", f"expected a probability in (0, 1), got {threshold}")
    counts = {k: _get(head, k, where, "linkage.", int, d) for k, d in
              (("max_pairs", 50_000_000), ("u_sample_pairs", 1_000_000), ("seed", 42), ("em_iterations", 100))}
    for k in ("max_pairs", "u_sample_pairs", "em_iterations"):
        if counts[k] < 1:
            raise SettingsError(where, f"linkage.{k}", f"expected a whole number >= 1, got {counts[k]}")
    return LinkageSpec(_name(_get(head, "name", where, "linkage.", str), where, "linkage.name"),
                       _name(_get(head, "left_id", where, "linkage.", str), where, "linkage.left_id"),
                       _name(_get(head, "right_id", where, "linkage.", str), where, "linkage.right_id"),
                       tuple(rules), tuple(comparisons), direct, tuple(cascade),
                       _get(head, "one_to_one", where, "linkage.", bool, True), counts["max_pairs"], share, threshold,
                       counts["u_sample_pairs"], counts["seed"], counts["em_iterations"],
                       _get(head, "clusters", where, "linkage.", bool, False),
                       _get(head, "right_id_repeats", where, "linkage.", bool, False), renames["left"],
                       renames["right"], tuple(training))


def load_spec(path: Path) -> LinkageSpec:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(str(path), "linkage", "no such spec file") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(str(path), "linkage", f"not valid TOML: {e}") from None
    return spec_from_mapping(data, str(path))
