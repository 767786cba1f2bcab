"""A cohort built from the events layer and written out: the cohort and its flowchart as Delta
tables, the flowchart as JSON and as a picture in an HTML report. A project's cohort holds the
project's pseudonyms; the report's counts are released with small cells suppressed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from pds_spark import charts, report
from pds_spark.access import Resource
from pds_spark.cohort.build import Step, build_cohort
from pds_spark.cohort.explore import age_sex
from pds_spark.cohort.layer import columns_read, data_end, read_events, read_patients
from pds_spark.cohort.spec import CohortSpec
from pds_spark.disclosure import suppress as sdc
from pds_spark.pseudo.datasets import for_project, write_table
from pds_spark.pseudo.keystore import KeyStore
from pds_spark.pseudo.sealing import sealed
from pds_spark.warehouse import Warehouse

# A project cohort keeps its patients' platform pseudonyms sealed (AES-GCM, a random IV a value:
# two projects' seals of one patient differ) under a key only the platform holds, so that an
# extract finds their rows without keying every patient of the warehouse again.
SEAL_KEY = "cohort-seal"
SEALED = "_sealed_patient"


def cohort_resource(project: str, spec: CohortSpec) -> Resource:
    """What building the cohort reads: the source tables and columns of its event categories and
    of its population, over the study period widened by its windows."""
    return Resource(project, columns_read(spec.categories_read, spec.birth, spec.death), spec.reach)


@dataclass(frozen=True)
class CohortOutcome:
    spec: CohortSpec
    steps: list[Step]
    cohort: str  # the Delta table's path
    flowchart: str
    report: Path
    released: sdc.Suppressed | None = None  # the flowchart as the report shows it

    @property
    def patients(self) -> int:
        return self.steps[-1].patients

    def summary(self) -> list[str]:
        lines = [f"cohort {self.spec.name}: {self.patients:,} patients -> {self.cohort}"]
        lines += [f"  {s.number}. {s.description:<70} {s.patients:>10,}" for s in self.steps]
        lines.append(f"flowchart: {self.report}")
        return lines


def write_cohort(spark: SparkSession, warehouse: Warehouse, spec: CohortSpec, cohort_path: str, flowchart_path: str,
                 report_path: Path, *, project: str | None = None, keys: KeyStore | None = None,
                 small_cell: int = 10) -> CohortOutcome:
    """Build the cohort from the layer and write it (each table replaced in one commit). For a
    project, `patient` is keyed again with the project's key, as its extracts are, and its
    platform pseudonym sealed (`SEALED`)."""
    events = read_events(spark, warehouse, spec.categories_read, spec.reach)
    cohort, steps = build_cohort(events, read_patients(spark, warehouse), spec, data_end(spark, warehouse))
    props: dict[str, str] = {}
    if project:
        if keys is None:
            raise ValueError("a project's cohort needs the key store")
        cohort, props = for_project_cohort(cohort, keys, project)
    write_table(cohort, Path(cohort_path), props)
    released = released_flowchart(steps, small_cell)
    flow = spark.createDataFrame([(s.number, s.description, s.patients, released.released[_step_key(s)])
                                  for s in steps], "step int, description string, patients long, released long")
    flow.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(flowchart_path)
    outcome = CohortOutcome(spec, steps, cohort_path, flowchart_path, report_path, released)
    write_report(outcome, age_sex(spark.read.format("delta").load(cohort_path)), small_cell)
    return outcome


def for_project_cohort(cohort: DataFrame, keys: KeyStore, project: str) -> tuple[DataFrame, dict[str, str]]:
    """A cohort's `patient` sealed into `SEALED`, then keyed with the project's key; the table
    properties that say so."""
    info = keys.ensure(SEAL_KEY)
    cohort = sealed(cohort.withColumn(SEALED, cohort["patient"]), SEALED, keys.chain(SEAL_KEY)[-1], SEALED)
    cohort, props, _ = for_project(cohort, {"platform": ["patient"]}, keys, project)
    return cohort, {**props, f"pds.seal.{SEAL_KEY}.version": str(info.versions)}


def _step_key(step: Step) -> sdc.Key:
    return (f"{step.number}. {step.description}",)


def released_flowchart(steps: list[Step], small_cell: int) -> sdc.Suppressed:
    """The flowchart's counts and exclusions with cells of 1 to `small_cell` patients suppressed."""
    ordered = sorted(steps, key=lambda s: s.number)
    table = sdc.flowchart("attrition", [(s.description, s.patients) for s in ordered])
    return sdc.suppress(table, small_cell)


def released_pyramid(pyramid: list[tuple[str, int, int]], small_cell: int) -> sdc.Suppressed:
    """The age-sex table (with its totals) with small cells suppressed."""
    counts = {(b, sex): n for b, m, w in pyramid for sex, n in (("men", m), ("women", w))}
    return sdc.suppress(sdc.two_way("age and sex", ("age band", "sex"), counts, [b for b, _, _ in pyramid],
                                    ["men", "women"]), small_cell)


def write_report(outcome: CohortOutcome, pyramid: list[tuple[str, int, int]], small_cell: int = 10) -> Path:
    spec, steps = outcome.spec, sorted(outcome.steps, key=lambda s: s.number)
    flow = outcome.released or released_flowchart(steps, small_cell)
    shown = [flow.released[_step_key(s)] for s in steps]
    excluded = [None if not i else flow.released[(f"excluded at step {i + 1}",)] for i in range(len(steps))]
    ages = released_pyramid(pyramid, small_cell)
    ages_shown = [(b, ages.released[(b, "men")], ages.released[(b, "women")]) for b, _, _ in pyramid]
    blocked = len(flow.blocked) + len(ages.blocked)
    rule = (f"Counts of 1 to {small_cell} patients are suppressed, and as many others as keep them from being "
            f"recomputed ({blocked} suppressed)." if blocked or flow.withheld or ages.withheld
            else f"No count of 1 to {small_cell} patients.")
    sections = [
        report.Section("Attrition flowchart", [f"spec {spec.source}; events read from {spec.reach[0]} to {spec.reach[1]}",
                                               rule],
                       ["flowchart"], [[report.Markup(charts.flowchart([(s.description, n) for s, n in zip(steps, shown)],
                                                                       excluded=excluded))]]),
        report.Section("Steps", columns=["step", "description", "patients", "excluded"],
                       rows=[[s.number, s.description, _text(n), _text(e) if i else ""]
                             for i, (s, n, e) in enumerate(zip(steps, shown, excluded))]),
        report.Section("Age and sex at the index date", [rule], columns=["pyramid"],
                       rows=[[report.Markup(charts.pyramid(ages_shown))]]),
        report.Section("Outputs", [f"cohort (Delta): {outcome.cohort}", f"flowchart (Delta): {outcome.flowchart}"]),
    ]
    data = {"cohort": spec.name, "spec": spec.source, "period": [str(d) for d in spec.period],
            "reach": [str(d) for d in spec.reach], "small_cell": small_cell,
            "steps": [{**asdict(s), "patients": n, "excluded": e} for s, n, e in zip(steps, shown, excluded)],
            "age_sex": [{"band": b, "men": m, "women": w} for b, m, w in ages_shown],
            "suppressed": [" x ".join(k) for k in [*flow.blocked, *ages.blocked]],
            "cohort_table": outcome.cohort, "flowchart_table": outcome.flowchart}
    total = flow.released[_step_key(steps[-1])] if steps else 0
    verdict = f"{_text(total)} patients in the cohort"
    return report.write(outcome.report, f"Cohort {spec.name}", verdict, True, sections, data)


def _text(n: int | None) -> str:
    return "suppressed" if n is None else f"{n:,}"
