"""Link two files of people (appariement): a research file with another, or with an SNDS table.

  spark-submit.sh jobs/link.py --spec conf/linkage/file_to_file.toml --left A.csv --right B.parquet \\
      --output <warehouse>/projects/p042/links_registry [--truth T.csv] [--project p042]

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

import sys
from pathlib import Path

from pds_spark.access import Resource
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.linkage.io import read_input, typed, write_links
from pds_spark.linkage.report import write_report
from pds_spark.linkage.run import HISTOGRAM_BIN, link
from pds_spark.linkage.spec import load_spec


def add_arguments(parser):
    parser.add_argument("--spec", type=Path, required=True, help="the linkage spec (TOML)")
    parser.add_argument("--left", type=Path, required=True, help="the left file (CSV, Parquet or Delta)")
    parser.add_argument("--right", type=Path, required=True, help="the right file (CSV, Parquet or Delta)")
    parser.add_argument("--output", type=Path, required=True, help="where the links go (a Delta table)")
    parser.add_argument("--truth", type=Path, help="the true pairs (id_l, id_r), to measure precision and recall")
    parser.add_argument("--project", help="the project the linkage is for")


def body(run: JobRun):
    a = run.args
    spec = load_spec(a.spec)
    run.input(str(a.spec))
    if a.project:
        run.authorize("use", Resource(a.project))
    for path in (a.left, a.right, *([a.truth] if a.truth else [])):
        run.place(path, "read", a.project)
        run.input(str(path))
    run.place(a.output, "write", a.project)
    left, right = typed(read_input(run.spark, a.left), spec), typed(read_input(run.spark, a.right), spec)
    truth = read_input(run.spark, a.truth) if a.truth else None
    result = link(run.spark, left, right, spec, truth)
    written = write_links(result.links, a.output)
    path = write_report(a.output.with_name(a.output.name + ".html"), spec, result, a.output, HISTOGRAM_BIN)
    run.output(str(a.output))
    run.output(str(path))
    run.count("links", written)
    run.summary += [f"linkage {spec.name}: {written:,} links in {a.output}; report {path}"]
    if result.evaluation:
        e = result.evaluation
        run.summary += [f"  precision {e['precision']:.4f}, recall {e['recall']:.4f}, F1 {e['F1']:.4f}"]
    return 0


if __name__ == "__main__":
    sys.exit(run_job("link", __doc__, body, add_arguments))
