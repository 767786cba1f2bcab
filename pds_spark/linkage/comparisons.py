"""How alike a pair's two values are, as a level: 0 when either value is missing (it says
nothing), then from the most alike down to the last, "else". Each comparison is one native
Spark expression over the pair's `<column>_l` and `<column>_r`; the string similarities that
Spark lacks are Java functions (jvm/functions), never Python on pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.errors import ExitCode, PdsError

KINDS = ("exact", "levenshtein", "damerau_levenshtein", "jaro_winkler", "dice", "date", "month", "numeric", "prefix")
JAVA_FUNCTIONS = {"pds_jaro_winkler": ("fr.pds.spark.linkage.JaroWinkler", T.DoubleType()),
                  "pds_damerau_levenshtein": ("fr.pds.spark.linkage.DamerauLevenshtein", T.IntegerType())}


class LinkageError(PdsError):
    """A linkage cannot run as asked (its spec, its inputs or its size): fix them and re-run."""

    exit_code = ExitCode.USAGE


def register_functions(spark: SparkSession) -> None:
    """The Java similarities as SQL functions of this session (jars/pds-spark-functions.jar)."""
    for name, (java_class, returns) in JAVA_FUNCTIONS.items():
        try:
            spark.udf.registerJavaFunction(name, java_class, returns)
        except Exception as e:  # noqa: BLE001 - say what is missing, not a Py4J trace
            raise LinkageError(f"{java_class} is not on Spark's class path: run bin/bootstrap "
                               f"(it builds jars/pds-spark-functions.jar) ({type(e).__name__})") from None


def _days_apart(a: Column, b: Column, most: int) -> Column:
    return F.abs(F.datediff(a, b)) <= most


def _months_apart(a: Column, b: Column, most: int) -> Column:
    return F.abs(F.months_between(a, b)) <= most


def _edits(a: Column, b: Column, most: int) -> Column:
    return F.levenshtein(a, b) <= most


def _edits_or_swaps(a: Column, b: Column, most: int) -> Column:
    return F.call_function("pds_damerau_levenshtein", a, b) <= most


def _jaro_winkler(a: Column, b: Column, least: float) -> Column:
    return F.call_function("pds_jaro_winkler", a, b) >= least


def _dice(a: Column, b: Column, least: float) -> Column:
    """Dice similarity of two CLKs (arrays of set bits, linkage.bloom)."""
    return F.lit(2.0) * F.size(F.array_intersect(a, b)) / (F.size(a) + F.size(b)) >= least


def _apart(a: Column, b: Column, most: float) -> Column:
    return F.abs(a - b) <= most


def _same_start(a: Column, b: Column, length: int) -> Column:
    return F.substring(a, 1, length) == F.substring(b, 1, length)


@dataclass(frozen=True)
class Comparison:
    """One column compared: `kind` with its `thresholds` (distances, similarities, days,
    differences or prefix lengths, from the most alike down), named `name` in the model."""

    name: str
    column: str
    kind: str
    thresholds: tuple[float, ...] = ()
    swapped_day_month: bool = False  # date: 2020-03-04 against 2020-04-03 is a level of its own
    term_frequency: bool = False  # agreeing on a rare value weighs more than on a common one
    labels: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise LinkageError(f"comparison {self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind in ("levenshtein", "damerau_levenshtein", "date", "month", "numeric") and \
                list(self.thresholds) != sorted(self.thresholds):
            raise LinkageError(f"comparison {self.name}: thresholds {list(self.thresholds)} must grow "
                               "(the most alike level first)")
        if self.kind in ("jaro_winkler", "dice", "prefix") and \
                list(self.thresholds) != sorted(self.thresholds, reverse=True):
            raise LinkageError(f"comparison {self.name}: thresholds {list(self.thresholds)} must shrink "
                               "(the most alike level first)")
        if self.kind in ("jaro_winkler", "dice") and any(not 0 < t < 1 for t in self.thresholds):
            raise LinkageError(f"comparison {self.name}: {self.kind} thresholds lie between 0 and 1")
        if self.kind not in ("exact", "date", "month") and not self.thresholds:
            raise LinkageError(f"comparison {self.name}: a {self.kind} comparison needs thresholds")
        object.__setattr__(self, "labels", tuple(label for label, _ in self._levels()))

    @property
    def levels(self) -> int:
        """Levels including 0 (missing)."""
        return len(self.labels)

    def _levels(self) -> list[tuple[str, Callable[[Column, Column], Column] | None]]:
        """(label, condition of the left and right values) from level 0 (missing) to the last
        (None: whatever is left). Pure: the conditions are built when a level is asked for."""
        out: list[tuple[str, Callable[[Column, Column], Column] | None]] = [
            ("missing", lambda a, b: a.isNull() | b.isNull())]
        if self.kind == "date":
            out.append(("same day", lambda a, b: a == b))
            if self.swapped_day_month:
                out.append(("day and month swapped", lambda a, b: (F.year(a) == F.year(b)) & (F.month(a) == F.dayofmonth(b))
                            & (F.dayofmonth(a) == F.month(b))))
            out += [(f"within {int(d)} days", partial(_days_apart, most=int(d)))
                    for d in self.thresholds]
        elif self.kind == "month":  # both sides the first day of their month (linkage.io.typed)
            out.append(("same month", lambda a, b: a == b))
            out += [(f"within {int(d)} months", partial(_months_apart, most=int(d))) for d in self.thresholds]
        else:
            out.append(("exact", lambda a, b: a == b))
            if self.kind == "levenshtein":
                out += [(f"{int(d)} edit(s)", partial(_edits, most=int(d))) for d in self.thresholds]
            elif self.kind == "damerau_levenshtein":
                out += [(f"{int(d)} edit(s) or transposition(s)",
                         partial(_edits_or_swaps, most=int(d)))
                        for d in self.thresholds]
            elif self.kind == "jaro_winkler":
                out += [(f"Jaro-Winkler >= {s:g}", partial(_jaro_winkler, least=s))
                        for s in self.thresholds]
            elif self.kind == "dice":
                out += [(f"Dice >= {s:g}", partial(_dice, least=s)) for s in self.thresholds]
            elif self.kind == "numeric":
                out += [(f"within {d:g}", partial(_apart, most=d)) for d in self.thresholds]
            elif self.kind == "prefix":
                out += [(f"first {int(n)} characters",
                         partial(_same_start, length=int(n))) for n in self.thresholds]
        out.append(("else", None))
        return out

    def level(self, left: Column | None = None, right: Column | None = None) -> Column:
        """The pair's level (an integer column named `gamma_<name>`)."""
        left = F.col(f"{self.column}_l") if left is None else left
        right = F.col(f"{self.column}_r") if right is None else right
        conditions = [condition for _, condition in self._levels()[:-1]]
        expr = F.when(conditions[0](left, right), F.lit(0))  # type: ignore[misc]
        for i, condition in enumerate(conditions[1:], 1):
            expr = expr.when(condition(left, right), F.lit(i))  # type: ignore[misc]
        return expr.otherwise(F.lit(len(conditions))).alias(gamma(self.name))


def gamma(name: str) -> str:
    return f"gamma_{name}"


def compared_columns(comparisons: Sequence[Comparison]) -> list[str]:
    return sorted({c.column for c in comparisons})
