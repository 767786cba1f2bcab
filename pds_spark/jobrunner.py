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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from pds_spark import audit
from pds_spark.access import Governance, Refused
from pds_spark.access.places import Place, Places
from pds_spark.catalog import Catalogue
from pds_spark.errors import ExitCode, PdsError, SettingsError
from pds_spark.identity import IdentityError, authenticated_user, os_user
from pds_spark.ingest.rules import IngestRules
from pds_spark.pseudo.keystore import KeyStore
from pds_spark.pseudo.policy import Policy
from pds_spark.quality.rules import ForeignKeyRule, foreign_key_rules
from pds_spark.session import build_session
from pds_spark.settings import (
    Settings,
    check_platform_file,
    job_settings_file,
    load_settings,
    parse_assignments,
    platform_file,
)
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
        for handler in logging.getLogger().handlers:
            handler.addFilter(_escape_controls)
    logging.getLogger("py4j").setLevel(logging.WARNING)


def _escape_controls(record: logging.LogRecord) -> bool:
    """A log line's message with its control characters escaped (a file name can hold any)."""
    message = record.getMessage()
    escaped = printable(message)
    if escaped != message:
        record.msg, record.args = escaped, None
    return True


@dataclass
class JobRun:
    """Handed to a job's body: what it needs, and what it reports for the audit."""

    name: str
    args: argparse.Namespace
    settings: Settings
    spark: SparkSession
    record: audit.AuditRecord
    summary: list[str] = field(default_factory=list)
    home: Warehouse | None = None  # where the audit trail and governance store live: the platform's
    platform: Settings | None = None  # the platform settings file alone, without this run's overrides

    @property
    def caller(self) -> str:
        """The authenticated identity (see pds_spark.identity), never a command-line claim."""
        return self.record.user

    # what the settings name, read once a run (and again after `override`) ---------------
    CONTEXT = ("catalogue", "policy", "keys", "ingest_rules", "quality_rules")

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue.from_settings(self.settings)

    @cached_property
    def policy(self) -> Policy:
        return Policy.from_settings(self.settings)

    @cached_property
    def keys(self) -> KeyStore:
        return KeyStore.from_settings(self.settings)

    @cached_property
    def ingest_rules(self) -> IngestRules:
        return IngestRules.load(self.settings.ingest.rules)

    @cached_property
    def quality_rules(self) -> tuple[ForeignKeyRule, ...]:
        return foreign_key_rules(self.settings.quality.rules)

    @cached_property
    def _governance(self) -> Governance:
        home = self.home or self.warehouse
        return Governance.from_settings(self.spark, self.platform or self.settings, warehouse=home.root)

    def governance(self) -> Governance:
        """The platform's governance store (the platform settings' warehouse and policies)."""
        return self._governance

    def authorize(self, action: str, resource=None) -> None:
        """Refuse (exit 4, audited) unless the caller may do `action` on `resource`."""
        self.governance().authorize(self.caller, action, resource)

    def place(self, path: str | Path, use: str, project: str | None = None) -> Place:
        """Where `path` is, if the caller may `use` it ('read', 'inspect', 'write', 'maintain');
        refused (exit 4, audited) otherwise. See pds_spark.access.places."""
        places = Places.of(self.governance(), self.settings, self.platform or self.settings)
        return places.check(self.caller, Path(path), use, project)

    def override(self, dotted: dict[str, Any], origins: dict[str, str] | None = None) -> None:
        """Change settings for this run: job settings freely, platform settings only for an
        administrator (recorded in the audit record); otherwise exit 2, the refusal audited."""
        origins = {k: (origins or {}).get(k, "--set") for k in dotted}
        changed = load_settings(self.settings.source, {**self.settings.overrides, **dotted}, origins)
        changes = changed.platform_changes(self.platform or self.settings)
        if changes:
            names = ", ".join(changes)
            try:
                gov = self.governance()
                why = gov.allowed(self.caller, "admin")
                if why is not None:
                    gov.refuse(self.caller, "change platform settings", _Described(names), why)
            except Refused as e:
                where = origins.get(next(iter(changes)), "--set")
                raise SettingsError(where, names, f"{e} (platform settings are set in {self.settings.source}; "
                                    "a run may change only spark.master, spark.log_level, ingest.parallel, "
                                    "storage.parallel)") from None
            self.record.parameters["platform_overrides"] = {k: str(v) for k, v in changes.items()}
            log.warning("platform settings changed for this run by administrator %s: %s", self.caller, names)
        self.settings = changed
        for name in self.CONTEXT:  # read again from the changed settings
            self.__dict__.pop(name, None)

    @property
    def work(self) -> Path:
        """The caller's work area: `<paths.work>/<caller>` (reports, generated corpora, scratch)."""
        return Path((self.platform or self.settings).paths.work) / self.caller

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings.paths.warehouse)

    def count(self, key: str, n: int) -> None:
        self.record.row_counts[key] = self.record.row_counts.get(key, 0) + int(n)

    def input(self, what: str) -> None:
        self.record.inputs.append(str(what))

    def output(self, what: str) -> None:
        self.record.outputs.append(str(what))


class _Described:
    """A resource for a refusal message that is not data (settings)."""

    def __init__(self, text: str):
        self.text = text

    def describe(self) -> str:
        return self.text


def make_parser(name: str, description: str,
                add_arguments: Callable[[argparse.ArgumentParser], None] | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"spark-submit.sh jobs/{name}.py", description=description, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    if add_arguments:
        add_arguments(parser)
    common = parser.add_argument_group("platform options")
    common.add_argument("--settings", metavar="FILE",
                        help="job settings for this run (TOML, the sections of conf/pds.toml)")
    common.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help="override one setting for this run, e.g. --set spark.log_level=INFO "
                             "(platform settings: administrators only, audited)")
    return parser


def platform_options(argv: list[str]) -> tuple[list[str], dict]:
    """Take --settings and --set out of argv wherever they are (after a sub-command too)."""
    rest: list[str] = []
    found: dict[str, Any] = {"settings": None, "set": []}
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
            argv: list[str] | None = None, platform_settings: str | Path | None = None) -> int:
    """Run a job and return its exit code (jobs call sys.exit on it). `platform_settings`:
    the deployment's settings file (default: `settings.platform_file()`), never a job argument."""
    setup_logging()
    rest, platform = platform_options(sys.argv[1:] if argv is None else list(argv))
    args = make_parser(name, description, add_arguments).parse_args(rest)
    args.settings = platform["settings"] or args.settings
    args.set = [*args.set, *platform["set"]]
    try:
        source = Path(platform_settings).resolve() if platform_settings else platform_file()
        check_platform_file(source)
        base = load_settings(source)
        requested = job_settings_file(args.settings) if args.settings else {}
        origins = {k: str(args.settings) for k in requested}
        assigned = parse_assignments(args.set)
        requested.update(assigned)
        origins.update({k: "--set" for k in assigned})
        settings = load_settings(source, requested, origins)  # validated before Spark starts
    except PdsError as e:
        log.error("%s", e)
        return int(e.exit_code)

    try:
        spark = build_session(settings, f"pds-{name}")
    except PdsError as e:
        log.error("%s", e)
        return int(e.exit_code)
    home = Warehouse(base.paths.warehouse)
    code = ExitCode.OK
    try:
        caller, refused = authenticated_user(spark), None
    except IdentityError as e:
        caller, refused = os_user(), e
    record = audit.AuditRecord(job=name, user=caller, parameters={k: v for k, v in vars(args).items()})
    run = JobRun(name, args, base, spark, record, home=home, platform=base)
    try:
        if refused is not None:
            raise refused
        if requested:
            run.override(requested, origins)
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
        seq = audit.append(spark, home.audit, record)
        run.summary.append(f"audit: record {seq} of {home.audit}; trail head {audit.head(spark, home.audit)}")
    except Exception as e:  # noqa: BLE001 - a run that cannot be audited is not a success
        log.error("could not write the audit record: %s", e)
        code = ExitCode.FAILED if code == ExitCode.OK else code
    for line in run.summary:
        print(printable(line))
    log.info("job %s ended: %s (exit %d)", name, record.outcome, int(code))
    return int(code)


def printable(text: str) -> str:
    """Control characters (a file name can hold any) shown escaped, so that a summary line
    cannot rewrite the terminal or forge another line of a scheduler's log."""
    return "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in str(text))
