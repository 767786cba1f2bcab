"""Link two files of people (appariement): a research file with another, or with the SNDS.

  spark-submit.sh jobs/link.py --spec conf/linkage/file_to_file.toml --left A.csv --right B.parquet \\
      --output <warehouse>/projects/p042/links_registry [--truth T.csv] [--project p042]
  spark-submit.sh jobs/link.py --spec conf/linkage/external_to_snds.toml --left cohorte.csv --right snds \\
      --project p042 --cohort registry

With `--right snds` the research file is linked to the warehouse's beneficiaries (IR_BEN_R:
sex, birth month, commune) and their hospital stays (PMSI MCO: FINESS, admission date), as the
CNAM links indirectly: an engineer runs it for a project that holds a grant of IR_BEN_R, and the
linked people become the project's cohort `cohort_<name>` (their pseudonyms keyed with the
project's key, usable by jobs/extract.py --cohort <name>); no quasi-identifier value leaves the
platform's side, the project receives ids, levels and weights. The truth's id_r are then the
BEN_NIR_PSA as delivered (keyed here as the warehouse's).

The spec (conf/linkage/*.toml) names the id column of each side and the steps, run in order,
each on the records the earlier ones left unlinked: [direct] (the same identifier on both
sides), [[cascade]] (deterministic passes, each keeping only one-to-one matches) and the
probabilistic Fellegi-Sunter step ([[blocking]] rules and [[comparison]]s; m by EM, u from
random pairs). Inputs: CSV (a header; ; or ,), Parquet or Delta. Output: a Delta table of links
(id_l, id_r, step, match weight and probability, each comparison's level and weight) and
beside it <output>.html and .json: steps, blocking, m and u, the weights' histogram, waterfalls,
and precision, recall and F1 when --truth (id_l, id_r) is given. The pairs are counted before
they are built: over the spec's max_pairs, or one block too large, the run is refused (exit 2).
Reads and writes where the caller may (a project's area with --project, the caller's work area);
an SNDS table only under a project whose grant covers it. Exit 0: done; 2: a bad spec or input
(a column missing, ids not unique, too many pairs); 4: refused.
"""

import re
import sys
from pathlib import Path

from pds_spark.access import Resource
from pds_spark.cohort.run import for_project_cohort
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.linkage.comparisons import LinkageError
from pds_spark.linkage.io import read_input, typed, write_links
from pds_spark.linkage.report import write_report
from pds_spark.linkage.run import HISTOGRAM_BIN, link
from pds_spark.linkage.snds import ID, read_people_and_stays
from pds_spark.linkage.spec import load_spec
from pds_spark.pseudo.datasets import pseudonymise_frame

SNDS = "snds"


def add_arguments(parser):
    parser.add_argument("--spec", type=Path, required=True, help="the linkage spec (TOML)")
    parser.add_argument("--left", type=Path, required=True, help="the left file (CSV, Parquet or Delta)")
    parser.add_argument("--right", required=True,
                        help=f"the right file (CSV, Parquet or Delta), or {SNDS!r}: the warehouse's beneficiaries and "
                             "their hospital stays")
    parser.add_argument("--output", type=Path, help="where the links go (a Delta table); not with --right snds")
    parser.add_argument("--cohort", help="with --right snds: the project cohort the linked people become")
    parser.add_argument("--truth", type=Path, help="the true pairs (id_l, id_r), to measure precision and recall")
    parser.add_argument("--project", help="the project the linkage is for")


def _places(run: JobRun) -> Path:
    """Check what the run reads and writes; the links' path."""
    a = run.args
    snds = a.right == SNDS
    if snds and not (a.project and a.cohort) or snds and a.output or not snds and (a.cohort or not a.output):
        raise LinkageError("give --output, or with --right snds --project and --cohort (not --output)")
    if snds and not re.fullmatch(r"[A-Za-z0-9_]+", a.cohort):
        raise LinkageError(f"--cohort {a.cohort!r}: a cohort's name is letters, digits and _")
    if a.project:
        run.authorize("use", Resource(a.project))
    if snds:
        run.authorize("link_snds")
        run.authorize("read", Resource(a.project, {"IR_BEN_R": (ID,)}))  # its people may become the project's
    for path in (a.left, *([] if snds else [Path(a.right)]), *([a.truth] if a.truth else [])):
        run.place(path, "read", a.project)
        run.input(str(path))
    output = Path(run.warehouse.project(a.project, f"cohort_{a.cohort}")) if snds else a.output
    run.place(output, "write", a.project)
    return output


def body(run: JobRun):
    a = run.args
    spec = load_spec(a.spec)
    run.input(str(a.spec))
    output = _places(run)
    snds = a.right == SNDS
    right = read_people_and_stays(run.spark, run.warehouse, run.catalogue) if snds else read_input(run.spark,
                                                                                                   Path(a.right))
    left, right = typed(read_input(run.spark, a.left), spec, "left"), typed(right, spec, "right")
    truth = read_input(run.spark, a.truth) if a.truth else None
    if truth is not None and snds:  # BEN_NIR_PSA as delivered: keyed as the warehouse's
        truth = pseudonymise_frame(truth.withColumnRenamed("id_r", ID), "linkage_truth", run.policy, run.keys) \
            .frame.withColumnRenamed(ID, "id_r")
    result = link(run.spark, left, right, spec, truth)
    links, props = result.links, {}
    if snds:  # the project's cohort: its own pseudonyms
        links, props = for_project_cohort(links.withColumnRenamed("id_r", "patient"), run.keys, a.project)
    written = write_links(links, output, props)
    path = write_report(output.with_name(output.name + ".html"), spec, result, output, HISTOGRAM_BIN)
    run.output(str(output))
    run.output(str(path))
    run.count("links", written)
    run.summary += [f"linkage {spec.name}: {written:,} links in {output}; report {path}"]
    if result.evaluation:
        e = result.evaluation
        run.summary += [f"  precision {e['precision']:.4f}, recall {e['recall']:.4f}, F1 {e['F1']:.4f}"]
    return 0


if __name__ == "__main__":
    sys.exit(run_job("link", __doc__, body, add_arguments))
