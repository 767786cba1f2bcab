"""Write a project's extract and decide whether it may be used.

Each table: read at a pinned Delta version, the granted periods and columns kept, the cohort's
patients only (a semi-join on the platform's pseudonym), every pseudonym keyed again with the
project's key, written in one commit as `projects/<P>/<TABLE>` with `pds.extract.status =
pending`. Then conformity (no direct identifier, no quasi-identifier outside the grant) and the
re-identification risk gate run on what was written; the status becomes `usable` or `blocked`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pds_spark import charts, report
from pds_spark.cohort.layer import read_patients
from pds_spark.cohort.run import SEAL_KEY, SEALED
from pds_spark.disclosure.risk import BANDS, Risk, RiskLimits, measure
from pds_spark.extract.plan import PERSON_COLUMNS, ExtractError, ExtractPlan, periods_within, person_column
from pds_spark.pseudo.apply import pseudonym_state
from pds_spark.pseudo.conformity import Finding, findings
from pds_spark.pseudo.datasets import for_project_over, write_table
from pds_spark.pseudo.hmac import pseudonymise
from pds_spark.pseudo.keystore import KeyStore
from pds_spark.pseudo.policy import Policy
from pds_spark.pseudo.sealing import opened
from pds_spark.sqltext import quoted, sql_text
from pds_spark.warehouse import Warehouse, delta_exists, latest_version, table_properties

log = logging.getLogger("pds.extract")
STATUS = "pds.extract.status"  # pending | usable | blocked


@dataclass(frozen=True)
class TableExtract:
    table: str
    path: str
    source: str  # the SNDS table read, with its Delta version
    periods: list[str]
    rows: int
    findings: list[Finding]
    risk: Risk
    failures: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class ExtractOutcome:
    plan: ExtractPlan
    tables: list[TableExtract]
    report: Path

    @property
    def usable(self) -> bool:
        return all(t.usable for t in self.tables)

    def summary(self) -> list[str]:
        head = (f"extract for project {self.plan.project}: {len(self.tables)} table(s), "
                + ("usable" if self.usable else "BLOCKED: not usable"))
        lines = [head]
        for t in self.tables:
            k = "-" if t.risk.k is None else t.risk.k
            lines.append(f"  {t.table:<16} {t.rows:>12,} rows  k={k}  from {t.source}  -> {t.path}"
                         f"  [{'usable' if t.usable else 'blocked'}]")
            lines += [f"    {why}" for why in t.failures]
        lines.append(f"report: {self.report}")
        return lines


def extract_rows(df: DataFrame, columns: Sequence[str], periods: Sequence[str] | None,
                 person: str | None = None, members: DataFrame | None = None) -> DataFrame:
    """The rows of these periods (all without `_period`), of the members' patients (a frame of
    `patient`), reduced to these columns."""
    rows = df.where(F.col("_period").isin(*periods)) if periods is not None else df
    if members is not None:
        if person is None:
            raise ExtractError("a cohort restricts a table through its patient column")
        rows = rows.join(members.select(F.col("patient").alias(person)), person, "left_semi")
    return rows.select(*[F.col(quoted(c)) for c in columns])


def cohort_members(spark: SparkSession, warehouse: Warehouse, cohort_path: str, keys: KeyStore,
                   project: str) -> DataFrame:
    """The platform pseudonyms of a project cohort's patients: its sealed column opened (the seal's
    key at the version it was sealed with), else the layer's patients keyed with the project's
    key and matched with the cohort's project pseudonyms (every patient of the warehouse keyed)."""
    if not delta_exists(spark, cohort_path):
        raise ExtractError(f"no cohort at {cohort_path}: build it first (jobs/build_cohort.py)")
    project_key = f"project-{project.lower()}"
    props = table_properties(spark, cohort_path)
    cohort = spark.read.format("delta").load(cohort_path)
    state = pseudonym_state(props).get(project_key)
    if not state or "patient" not in state.get("columns", "").split(","):
        raise ExtractError(f"{cohort_path} holds no pseudonyms of project {project}: rebuild it with "
                           f"jobs/build_cohort.py --project {project}")
    current = keys.info(project_key).versions
    if int(state["version"]) != current:
        raise ExtractError(f"{cohort_path} is keyed with version {state['version']} of the project's key, which is "
                           f"now at {current}: re-key the project's tables (jobs/keys.py) first")
    seal = props.get(f"pds.seal.{SEAL_KEY}.version")
    if seal and SEALED in cohort.columns and keys.exists(SEAL_KEY) and int(seal) <= keys.info(SEAL_KEY).versions:
        key = keys.chain(SEAL_KEY, since=int(seal) - 1, until=int(seal))[0]
        return opened(cohort.select(SEALED), key, SEALED, "patient").distinct()
    patients = read_patients(spark, warehouse).select(F.col("patient").alias("platform"), "patient")
    keyed = pseudonymise(patients, ["patient"], keys.chain(project_key))
    return keyed.join(cohort.select("patient").distinct(), "patient", "left_semi").select(F.col("platform").alias("patient"))


def run_extract(spark: SparkSession, warehouse: Warehouse, plan: ExtractPlan, policy: Policy, keys: KeyStore,
                names: DataFrame, limits: RiskLimits, quasi_columns: Sequence[str], report_path: Path,
                progress: Callable[[str], None] = log.info) -> ExtractOutcome:
    # the potentially identifying category the extract holds, which its authorisation allowed
    allowed = tuple(policy.quasi_categories([c for cols in plan.columns.values() for c in cols]))
    members = None
    if plan.cohort:  # cached and counted: the planner knows it is small and broadcasts it to the semi-join
        members = cohort_members(spark, warehouse, warehouse.project(plan.project, f"cohort_{plan.cohort}"), keys,
                                 plan.project).cache()
        progress(f"extract: cohort {plan.cohort}: {members.count():,} patients")
    done = []
    try:
        for i, (table, columns) in enumerate(sorted(plan.columns.items()), 1):
            done.append(_extract_table(spark, warehouse, plan, table, columns, policy, keys, names, limits,
                                       quasi_columns, members, allowed))
            t = done[-1]
            progress(f"extract [{i}/{len(plan.columns)}] {table}: {t.rows:,} rows, "
                     + ("usable" if t.usable else f"blocked ({len(t.failures)} reason(s))"))
    finally:
        if members is not None:
            members.unpersist()
    outcome = ExtractOutcome(plan, done, report_path)
    write_report(outcome, limits)
    return outcome


def _extract_table(spark: SparkSession, warehouse: Warehouse, plan: ExtractPlan, table: str, columns: Sequence[str],
                   policy: Policy, keys: KeyStore, names: DataFrame, limits: RiskLimits,
                   quasi_columns: Sequence[str], members: DataFrame | None, allowed: Sequence[str]) -> TableExtract:
    source = warehouse.snds(table)
    if not delta_exists(spark, source):
        raise ExtractError(f"table {table} is not loaded in {warehouse.root}/snds")
    version = latest_version(spark, source)
    df = spark.read.format("delta").option("versionAsOf", version).load(source)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ExtractError(f"{table} has no column {', '.join(missing)}")
    periods = None
    if "_period" in df.columns:
        periods = periods_within([r[0] for r in df.select("_period").distinct().collect()], plan.period)  # a few
    person = person_column(columns)
    if members is not None and person is None:
        raise ExtractError(f"{table}: none of the extracted columns is a patient's ({', '.join(PERSON_COLUMNS)}); "
                           "it cannot be restricted to the cohort")
    rows = extract_rows(df, columns, periods, person, members)
    keyed, props, _ = for_project_over(rows, table_properties(spark, source), keys, plan.project)
    path = warehouse.project(plan.project, table)
    props |= {"pds.extract.source": f"{source}@{version}", "pds.extract.periods": ",".join(periods or []),
              "pds.extract.cohort": plan.cohort or "", STATUS: "pending"}
    write_table(keyed, Path(path), props)
    written = spark.read.format("delta").load(path)
    found = findings(written, table, policy, names, allowed)
    quasi = [c for c in columns if c in set(quasi_columns) or policy.quasi_categories([c])]
    risk = measure(written, quasi, plan.sensitive.get(table), person, table, limits.min_k)
    failures = [f.line() for f in found] + risk.failures(limits)
    status = "blocked" if failures else "usable"
    spark.sql(f"ALTER TABLE delta.{quoted(path)} SET TBLPROPERTIES ({sql_text(STATUS)} = {sql_text(status)})")
    return TableExtract(table, path, f"{table}@{version}", periods or [], written.count(), found, risk, failures)


def write_report(outcome: ExtractOutcome, limits: RiskLimits) -> Path:
    plan = outcome.plan
    period = f"{plan.period[0]} to {plan.period[1]}" if plan.period else "all periods"
    gate = (f"k >= {limits.min_k}, at most {limits.max_unique_share:.1%} unique, l >= {limits.min_l} "
            "for a sensitive column")
    sections = [
        report.Section("Tables", [f"project {plan.project}; {period}; cohort {plan.cohort or '(none)'}",
                                  f"risk gate: {gate}"],
                       ["table", "source (Delta version)", "rows", "quasi-identifiers", "k", "unique", "l", "status"],
                       [(t.table, t.source, f"{t.rows:,}", ", ".join(t.risk.quasi) or "-",
                         "-" if t.risk.k is None else t.risk.k, f"{t.risk.unique:,} ({t.risk.unique_share:.1%})",
                         "-" if t.risk.l_diversity is None else t.risk.l_diversity,
                         "usable" if t.usable else "blocked") for t in outcome.tables]),
        report.Section("Why blocked", ["conformity findings count values, never show them"], ["table", "reason"],
                       [(t.table, why) for t in outcome.tables for why in t.failures]),
        report.Section("Class sizes", ["records (people with a patient column) by the size of the class they share "
                                       "their quasi-identifiers with; the first bars are the risky ones"],
                       ["table", "sizes"],
                       [(t.table, report.Markup(charts.bars([(label, t.risk.sizes.get(label, 0))
                                                             for _, _, label in BANDS])))
                        for t in outcome.tables if t.risk.k is not None]),
    ]
    data = {"project": plan.project, "period": [str(d) for d in plan.period] if plan.period else None,
            "cohort": plan.cohort, "usable": outcome.usable, "limits": asdict(limits),
            "tables": [{"table": t.table, "path": t.path, "source": t.source, "periods": t.periods, "rows": t.rows,
                        "usable": t.usable, "failures": t.failures, "findings": [asdict(f) for f in t.findings],
                        "risk": {**asdict(t.risk), "unique_share": t.risk.unique_share}} for t in outcome.tables]}
    verdict = ("usable: conform and within the risk gate" if outcome.usable
               else "BLOCKED: not usable until the reasons below are fixed")
    return report.write(outcome.report, f"Extract for project {plan.project}", verdict, outcome.usable, sections, data)

