"""What every job shares: arguments, settings, session, audit record, exit code.

A job file only declares its arguments and a `body(run)` function; this module
parses (so `--help` answers before Spark starts), validates settings, builds the
session, records the run in the audit trail and turns the outcome into an exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from dataclasses import dataclass, field
from typing import Callable

from pyspark.sql import SparkSession

from pds_spark import audit
from pds_spark.errors import ExitCode, PdsError
from pds_spark.settings import Settings, load_settings, parse_assignments
from pds_spark.warehouse import Warehouse

EPILOG = """exit codes:
  0  success
  1  the job failed (see the log; nothing half-written is left visible)
  2  bad arguments, settings or catalogue
  3  the job ran but its checks failed (quarantine over threshold, conformity findings)
  4  refused: the caller is not authorised"""

log = logging.getLogger("pds")


def setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            datefmt="%H:%M:%S")
    logging.getLogger("py4j").setLevel(logging.WARNING)


@dataclass
class JobRun:
    """Handed to a job's body: what it needs, and what it reports for the audit."""

    name: str
    args: argparse.Namespace
    settings: Settings
    spark: SparkSession
    record: audit.AuditRecord
    summary: list[str] = field(default_factory=list)
    home: Warehouse | None = None  # where the audit trail and governance store live

    @property
    def caller(self) -> str:
        """The Spark user: authenticated by the cluster, never a command-line claim."""
        return self.record.user

    def authorize(self, action: str, resource=None) -> None:
        """Refuse (exit 4, audited) unless the caller may do `action` on `resource`."""
        from pds_spark.access import Governance

        governance = Governance.from_settings(self.spark, self.settings, warehouse=self.home.root)
        governance.authorize(self.caller, action, resource)

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings.paths.warehouse)

    def count(self, key: str, n: int) -> None:
        self.record.row_counts[key] = self.record.row_counts.get(key, 0) + int(n)

    def input(self, what: str) -> None:
        self.record.inputs.append(str(what))

    def output(self, what: str) -> None:
        self.record.outputs.append(str(what))


def make_parser(name: str, description: str,
                add_arguments: Callable[[argparse.ArgumentParser], None] | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"spark-submit.sh jobs/{name}.py", description=description, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    if add_arguments:
        add_arguments(parser)
    common = parser.add_argument_group("platform options")
    common.add_argument("--settings", metavar="FILE",
                        help="settings file (default: $PDS_SETTINGS or conf/pds.toml)")
    common.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help="override one setting, e.g. --set paths.warehouse=/data/wh")
    return parser


def platform_options(argv: list[str]) -> tuple[list[str], dict]:
    """Take --settings and --set out of argv wherever they are (after a sub-command too)."""
    rest, found = [], {"settings": None, "set": []}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in ("--settings", "--set"):
            if not eq:
                if i + 1 >= len(argv):
                    rest.append(arg)  # argparse reports the missing value
                    break
                i, value = i + 1, argv[i + 1]
            if name == "--set":
                found["set"].append(value)
            else:
                found["settings"] = value
        else:
            rest.append(arg)
        i += 1
    return rest, found


def run_job(name: str, description: str, body: Callable[[JobRun], int | None],
            add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
            argv: list[str] | None = None) -> int:
    """Run a job and return its exit code (jobs call sys.exit on it)."""
    setup_logging()
    rest, platform = platform_options(sys.argv[1:] if argv is None else list(argv))
    args = make_parser(name, description, add_arguments).parse_args(rest)
    args.settings = platform["settings"] or args.settings
    args.set = [*args.set, *platform["set"]]
    try:
        settings = load_settings(args.settings, parse_assignments(args.set))
    except PdsError as e:
        log.error("%s", e)
        return int(e.exit_code)

    from pds_spark.session import build_session  # after --help: pyspark import is slow

    try:
        spark = build_session(settings, f"pds-{name}")
    except PdsError as e:
        log.error("%s", e)
        return int(e.exit_code)
    record = audit.AuditRecord(job=name, user=spark.sparkContext.sparkUser(),
                               parameters={k: v for k, v in vars(args).items()})
    run = JobRun(name, args, settings, spark, record, home=Warehouse(settings.paths.warehouse))
    code = ExitCode.OK
    try:
        returned = body(run)
        code = ExitCode(returned) if returned is not None else ExitCode.OK
        record.finish("success" if code == ExitCode.OK else code.name.lower())
    except PdsError as e:
        code = e.exit_code
        log.error("%s", e)
        record.finish(code.name.lower(), str(e))
    except Exception as e:  # noqa: BLE001 - the job's outcome must be recorded
        code = ExitCode.FAILED
        log.error("job %s failed: %s: %s", name, type(e).__name__, e)
        log.debug("%s", traceback.format_exc())
        record.finish("failed", f"{type(e).__name__}: {e}"[:2000])
    try:
        audit.append(spark, Warehouse(settings.paths.warehouse).audit, record)
    except Exception as e:  # noqa: BLE001 - a run that cannot be audited is not a success
        log.error("could not write the audit record: %s", e)
        code = ExitCode.FAILED if code == ExitCode.OK else code
    for line in run.summary:
        print(line)
    log.info("job %s ended: %s (exit %d)", name, record.outcome, int(code))
    return int(code)
