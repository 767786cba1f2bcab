"""Pseudonymisation keys: create, list, rotate (and re-key stored pseudonyms), destroy.

  spark-submit.sh jobs/keys.py list
  spark-submit.sh jobs/keys.py create platform
  spark-submit.sh jobs/keys.py rotate platform            new version, then re-key every table
  spark-submit.sh jobs/keys.py rekey platform             finish a rotation that was interrupted
  spark-submit.sh jobs/keys.py destroy project-p042 --confirm project-p042

Keys are kept encrypted in [pseudonymisation] keystore; the passphrase comes from
[pseudonymisation] unlock (by default the PDS_KEYSTORE_SECRET environment variable).
Re-keying looks for Delta tables under the warehouse, or under each --tables folder.
"""

import sys
from pathlib import Path

from pds_spark.errors import ExitCode
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.pseudo.datasets import rekey_tables


def add_arguments(parser):
    parser.add_argument("action", choices=["list", "create", "rotate", "rekey", "destroy"])
    parser.add_argument("key", nargs="?", help="key name, e.g. platform or project-p042")
    parser.add_argument("--tables", action="append", type=Path, default=[], metavar="DIR",
                        help="where to look for tables to re-key (default: the warehouse); repeatable")
    parser.add_argument("--confirm", metavar="KEY", help="destroy: repeat the key name to confirm")


def body(run: JobRun):
    a = run.args
    run.authorize("keys")
    keys = run.keys
    if a.action == "list":
        for k in keys.list():
            state = f"destroyed {k.destroyed}" if k.destroyed else f"version {k.versions}"
            run.summary.append(f"{k.name:<24} {state:<28} created {k.created}  rotated {k.rotated or '-'}")
        if not run.summary:
            run.summary.append(f"no keys in {keys.folder}")
        return ExitCode.OK
    if not a.key:
        print(f"error: {a.action} needs a key name", file=sys.stderr)
        return ExitCode.USAGE
    run.output(f"key:{a.key}")
    if a.action == "create":
        info = keys.create(a.key)
        run.summary.append(f"created key {info.name} (version 1) in {keys.folder}")
    elif a.action in ("rotate", "rekey"):
        if a.action == "rotate":
            info = keys.rotate(a.key)
            run.summary.append(f"key {a.key} is now at version {info.versions}")
        roots = a.tables or [run.settings.paths.warehouse]
        for root in a.tables:
            run.place(root, "maintain")
        for path, before, after in rekey_tables(run.spark, keys, a.key, roots):
            run.output(path)
            run.count("tables re-keyed", 1)
            run.summary.append(f"  re-keyed {path}: {a.key}@{before} -> @{after}")
        run.summary.append(f"every table under {', '.join(map(str, roots))} is at {a.key}@{keys.info(a.key).versions}")
    elif a.action == "destroy":
        if a.confirm != a.key:
            print(f"error: destroying {a.key} is final; add --confirm {a.key}", file=sys.stderr)
            return ExitCode.USAGE
        info = keys.destroy(a.key)
        run.summary.append(f"destroyed every version of {info.name}: its pseudonyms can no longer be linked")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(run_job("keys", __doc__, body, add_arguments))
