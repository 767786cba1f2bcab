"""A cohort built from the events layer and written out: the cohort and its flowchart as Delta
tables, the flowchart as JSON and as a picture in an HTML report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from pds_spark import charts, report
from pds_spark.access import Resource
from pds_spark.cohort.build import Step, build_cohort
from pds_spark.cohort.explore import age_sex
from pds_spark.cohort.layer import columns_read, data_end, read_events, read_patients
from pds_spark.cohort.spec import CohortSpec
from pds_spark.warehouse import Warehouse, delta_exists


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

    @property
    def patients(self) -> int:
        return self.steps[-1].patients

    def summary(self) -> list[str]:
        lines = [f"cohort {self.spec.name}: {self.patients:,} patients -> {self.cohort}"]
        lines += [f"  {s.number}. {s.description:<70} {s.patients:>10,}" for s in self.steps]
        lines.append(f"flowchart: {self.report}")
        return lines


def write_cohort(spark: SparkSession, warehouse: Warehouse, spec: CohortSpec, cohort_path: str, flowchart_path: str,
                 report_path: Path) -> CohortOutcome:
    """Build the cohort from the layer and write it (each table replaced in one commit)."""
    events = read_events(spark, warehouse, spec.categories_read, spec.reach)
    cohort, steps = build_cohort(events, read_patients(spark, warehouse), spec, data_end(spark, warehouse))
    mode = "overwrite" if delta_exists(spark, cohort_path) else "errorifexists"
    cohort.write.format("delta").mode(mode).option("overwriteSchema", "true").save(cohort_path)
    flow = spark.createDataFrame([(s.number, s.description, s.patients) for s in steps],
                                 "step int, description string, patients long")
    flow.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(flowchart_path)
    outcome = CohortOutcome(spec, steps, cohort_path, flowchart_path, report_path)
    write_report(outcome, age_sex(spark.read.format("delta").load(cohort_path)))
    return outcome


def write_report(outcome: CohortOutcome, pyramid: list[tuple[str, int, int]]) -> Path:
    spec, steps = outcome.spec, outcome.steps
    sections = [
        report.Section("Attrition flowchart", [f"spec {spec.source}; events read from {spec.reach[0]} to {spec.reach[1]}"],
                       ["flowchart"], [[report.Markup(charts.flowchart([(s.description, s.patients) for s in steps]))]]),
        report.Section("Steps", columns=["step", "description", "patients", "excluded"],
                       rows=[[s.number, s.description, s.patients, (steps[i - 1].patients - s.patients) if i else 0]
                             for i, s in enumerate(steps)]),
        report.Section("Age and sex at the index date", columns=["pyramid"],
                       rows=[[report.Markup(charts.pyramid(pyramid))]]),
        report.Section("Outputs", [f"cohort (Delta): {outcome.cohort}", f"flowchart (Delta): {outcome.flowchart}"]),
    ]
    data = {"cohort": spec.name, "spec": spec.source, "period": [str(d) for d in spec.period],
            "reach": [str(d) for d in spec.reach], "steps": [asdict(s) for s in steps],
            "age_sex": [{"band": b, "men": m, "women": w} for b, m, w in pyramid],
            "cohort_table": outcome.cohort, "flowchart_table": outcome.flowchart}
    return report.write(outcome.report, f"Cohort {spec.name}", f"{outcome.patients:,} patients in the cohort",
                        True, sections, data)
