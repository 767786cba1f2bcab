"""Check the SNDS catalogue and describe its tables.

  spark-submit.sh jobs/catalog.py check            every schema loads into a Spark schema; every refused
                                                   schema and unused override listed (exit 2 if any)
  spark-submit.sh jobs/catalog.py describe ER_PRS_F   fields, types, formats, keys, code lists
  spark-submit.sh jobs/catalog.py describe T_MCO14B   delivered names resolve too
  spark-submit.sh jobs/catalog.py ddl [TABLES] [--dialect oracle|postgresql]
                                                   the tables an export creates (every table without
                                                   names); Oracle's checked by sqlglot and the export's
                                                   rules (exit 2 if any statement breaks one)
"""

import sys

from pds_spark.errors import ExitCode
from pds_spark.jobrunner import JobRun, run_job


def add_arguments(parser):
    parser.add_argument("action", choices=["check", "describe", "ddl"], help="what to do")
    parser.add_argument("tables", nargs="*", help="table names for describe and ddl (published or delivered)")
    parser.add_argument("--dialect", choices=["oracle", "postgresql"], default="oracle", help="for ddl")


def body(run: JobRun):
    catalogue = run.catalogue
    run.input(run.settings.paths.catalog)
    if run.args.action == "check":
        fields = catalogue.check_in_spark(run.spark)
        run.count("tables", len(catalogue))
        run.count("fields", fields)
        run.count("refused", len(catalogue.refused))
        problems = catalogue.problems()
        run.summary.append(f"catalogue {run.settings.paths.catalog}: {len(catalogue)} tables, {fields} fields"
                           + (f"; {len(catalogue.refused)} schema(s) refused" if catalogue.refused
                              else ", all understood"))
        run.summary += [f"  {p}" for p in problems]
        for o in [*catalogue.overrides.entries, *catalogue.overrides.referentials]:
            run.summary.append(f"  override ({catalogue.overrides.source}): {o.describe()}")
        for note in catalogue.notes():
            run.summary.append(f"  note: {note}")
        return ExitCode.USAGE if problems else ExitCode.OK
    if run.args.action == "ddl":
        return _ddl(run)
    for name in run.args.tables:
        resolved = catalogue.resolve(name)
        table = resolved.table if resolved else catalogue.table(name)
        period = f" (period {resolved.period})" if resolved and resolved.period else ""
        run.summary.append(f"{table.name}{period}: {table.title} [{table.product}] from {table.source}")
        run.summary.append(f"  primary key: {', '.join(table.primary_key) or '-'}")
        for fk in table.foreign_keys:
            run.summary.append(f"  foreign key: ({', '.join(fk.fields)}) -> {fk.table}({', '.join(fk.ref_fields)})")
        for f in table.fields:
            shape = f.pattern or (f"/{f.value_regex}/" if f.value_regex else "")
            run.summary.append(f"  {f.name:<20} {f.type:<9} {f.spark_type.simpleString():<10} "
                               f"{f.oracle_column_type:<18} {shape:<22} {f.nomenclature or ''}")
    return 0


def _ddl(run: JobRun) -> ExitCode:
    from pds_spark.export.columns import target_columns
    from pds_spark.export.dialects import DIALECTS
    from pds_spark.export.rules import check_oracle, oracle_sql

    catalogue = run.catalogue
    tables = ([catalogue.table(n) for n in run.args.tables] if run.args.tables
              else sorted(catalogue.tables.values(), key=lambda t: t.name))
    dialect, bad = DIALECTS[run.args.dialect], 0
    for table in tables:
        keyed = run.policy.plan(table.name, table.column_names).pseudonym_columns
        print(dialect.create_table("WORKSPACE", table.name, target_columns(table.spark_schema, table, keyed)) + ";")
        if run.args.dialect == "oracle":
            for sql in oracle_sql(table, keyed):
                for problem in check_oracle(sql):
                    bad += 1
                    run.summary.append(f"  {table.name}: {problem}")
    checked = "checked by sqlglot and the export's rules" if run.args.dialect == "oracle" else "not checked"
    run.summary.insert(0, f"{len(tables)} table(s), {run.args.dialect} DDL {checked}: {bad} problem(s)")
    return ExitCode.USAGE if bad else ExitCode.OK


if __name__ == "__main__":
    sys.exit(run_job("catalog", __doc__, body, add_arguments))
