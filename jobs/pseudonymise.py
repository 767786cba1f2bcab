"""Apply the pseudonymisation policy to a table or an imported file, into a Delta table.

  spark-submit.sh jobs/pseudonymise.py --input var/work/$USER/corpus/external/cohorte_externe.csv \
      --output var/work/$USER/pseudo/cohorte_externe
  spark-submit.sh jobs/pseudonymise.py --input var/warehouse/snds/ER_PRS_F --project p042 \
      --output var/warehouse/projects/p042/ER_PRS_F

Identifier columns become HMAC-SHA256 pseudonyms (key and version recorded in the
table's properties), names are dropped, birth dates and communes coarsened, as
conf/pseudonymisation.toml says. With --project, every pseudonym is keyed again with
the project's own key, so the extract cannot be joined with any other project's.

With --bloom COLUMN... (and --project P), those name columns are kept, encoded: each becomes
`<column>_clk`, a Bloom filter of its bigrams under project P's own key (pds_spark.linkage.bloom),
so that two files of P link on similar names (jobs/link.py, `kind = "dice"`) while the platform
never holds them in clear.

Inputs: a file brought in, the caller's work area, a project area of theirs, or an SNDS
table with --project P whose grant covers the table's columns and periods. Output: the
caller's work area, or project P's area (then --project P is required).
"""

import sys
from pathlib import Path

from pds_spark.access import Resource
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.linkage.bloom import encode_for_project
from pds_spark.pseudo.datasets import (
    FORMATS,
    guess_format,
    pseudonymise_frame,
    read_dataset,
    table_properties,
    write_table,
)


def add_arguments(parser):
    parser.add_argument("--input", required=True, type=Path, help="CSV file or folder, Parquet or Delta")
    parser.add_argument("--output", required=True, type=Path, help="Delta table to create or replace")
    parser.add_argument("--format", choices=FORMATS, help="input format (default: guessed)")
    parser.add_argument("--sep", help="CSV separator (default: guessed from the header)")
    parser.add_argument("--encoding", default="UTF-8", help="CSV encoding (default UTF-8)")
    parser.add_argument("--table", help="table name the policy matches (default: the input's name)")
    parser.add_argument("--project", help="also key every pseudonym with this project's key")
    parser.add_argument("--bloom", nargs="+", default=[], metavar="COLUMN",
                        help="name columns to keep as Bloom-filter encodings (CLK) under the project's key")


def table_name(path: Path) -> str:
    return path.name.split(".")[0]


def body(run: JobRun):
    a = run.args
    run.authorize("pseudonymise", Resource(columns={a.input.name: ("*",)}))
    run.place(a.input, "read", project=a.project)
    out = run.place(a.output, "write", project=a.project)
    if out.area == "project" and a.project != out.project:
        print(f"error: {a.output} is project {out.project}'s area: add --project {out.project} "
              "(a project's tables carry its own pseudonyms)", file=sys.stderr)
        return 2
    policy, keys = run.policy, run.keys
    fmt = a.format or guess_format(a.input)
    df = read_dataset(run.spark, a.input, fmt, a.sep, a.encoding)
    already = table_properties(run.spark, str(a.input)) if fmt == "delta" else {}
    name = a.table or table_name(a.input)
    encoded: dict[str, str] = {}
    if a.bloom:
        if not a.project:
            print("error: --bloom encodes names under a project's key: add --project", file=sys.stderr)
            return 2
        missing = [c for c in a.bloom if c not in df.columns]
        if missing:
            print(f"error: --bloom {', '.join(missing)}: no such column in {a.input} (it has {', '.join(df.columns)})",
                  file=sys.stderr)
            return 2
        df, encoded = encode_for_project(df, a.bloom, keys, a.project)
    outcome = pseudonymise_frame(df, name, policy, keys, already, a.project)
    run.input(a.input)
    write_table(outcome.frame, a.output.resolve(), {**outcome.properties, **encoded})
    run.output(a.output)
    rows = run.spark.read.format("delta").load(str(a.output.resolve())).count()
    run.count("rows", rows)
    p = outcome.plan
    run.summary.append(f"{name}: {rows} rows -> {a.output}")
    for key, cols in p.pseudonyms.items():
        run.summary.append(f"  pseudonymised with key {key}: {', '.join(cols)}")
    if p.drops:
        run.summary.append(f"  dropped: {', '.join(p.drops)}")
    for col, rule in p.coarsen:
        run.summary.append(f"  coarsened to {rule.to}: {col}")
    if outcome.layered:
        run.summary.append(f"  keyed for project {a.project}: {', '.join(outcome.layered)}")
    if a.bloom:
        run.summary.append(f"  encoded as Bloom filters under project {a.project}'s key: "
                           f"{', '.join(c + '_clk' for c in a.bloom)}")
    if not p and not outcome.layered and not a.bloom:
        run.summary.append("  the policy names no column of this dataset: copied unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(run_job("pseudonymise", __doc__, body, add_arguments))
