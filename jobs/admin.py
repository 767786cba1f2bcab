"""Access and authorisations: users, roles, projects, grants, requests, the audit trail.

  spark-submit.sh jobs/admin.py init --roles admin engineer        first administrator (empty store only)
  spark-submit.sh jobs/admin.py whoami
  spark-submit.sh jobs/admin.py user add alice --name "Alice Martin" --roles analyst
  spark-submit.sh jobs/admin.py user deactivate alice
  spark-submit.sh jobs/admin.py role grant bob engineer [--until 2027-06-30]
  spark-submit.sh jobs/admin.py project create p042 --title "..." --legal-basis "CNIL DR-2026-123" \\
      --starts 2026-01-01 --ends 2028-12-31 --members alice carol
  spark-submit.sh jobs/admin.py project close p042 --reason "authorisation ended"   data and key destroyed
  spark-submit.sh jobs/admin.py member add p042 dave [--until DATE] | member revoke p042 dave
  spark-submit.sh jobs/admin.py grant add p042 --columns ER_PRS_F.BEN_NIR_PSA ER_PRS_F.PRS_NAT_REF \\
      --period 2019-01-01 2020-12-31 [--until DATE]
  spark-submit.sh jobs/admin.py revoke ID | approve ID
  spark-submit.sh jobs/admin.py show users|projects|entitlements|pending|requests|storage [--project P]
  spark-submit.sh jobs/admin.py check read --project p042 --columns ER_PRS_F.BEN_NIR_PSA --period 2019-01-01 2019-12-31
  spark-submit.sh jobs/admin.py request submit p042 ./cohort.csv --direction import --kind data
  spark-submit.sh jobs/admin.py request submit p042 var/work/alice/table1.csv --direction export --kind data \\
      [--columns ER_PRS_F.PRS_NAT_REF --period 2019-01-01 2019-12-31]
  spark-submit.sh jobs/admin.py request review ID --approve --reason "..."
  spark-submit.sh jobs/admin.py audit verify [--anchor SEQ:HASH ...] | audit head | audit show [--last N]

The caller is the Spark user (the cluster authenticates it), never a command-line
argument. Every change and every refusal is written to the hash-chained audit trail.
Exit 4 when the caller is not allowed; 3 when `audit verify` finds a broken chain.
"""

import sys
from datetime import date

from pyspark.sql import functions as F

from pds_spark import audit
from pds_spark.access import ROLES, Governance, Requests, Resource
from pds_spark.errors import ExitCode
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.storage.close import close_project
from pds_spark.storage.usage import storage_usage, totals


def _date(text: str) -> date:
    return date.fromisoformat(text)


def add_arguments(parser):
    sub = parser.add_subparsers(dest="area", required=True, metavar="COMMAND")
    init = sub.add_parser("init", help="make the caller the first administrator of an empty store")
    init.add_argument("--roles", nargs="+", choices=ROLES, default=["admin"])
    sub.add_parser("whoami", help="the caller's roles and projects")

    user = sub.add_parser("user", help="add or deactivate a user").add_subparsers(dest="op", required=True)
    add = user.add_parser("add")
    add.add_argument("user")
    add.add_argument("--name", required=True)
    add.add_argument("--roles", nargs="*", choices=ROLES, default=[])
    add.add_argument("--until", type=_date, help="roles expire after this day")
    user.add_parser("deactivate").add_argument("user")

    role = sub.add_parser("role", help="grant a role").add_subparsers(dest="op", required=True)
    grant_role = role.add_parser("grant")
    grant_role.add_argument("user")
    grant_role.add_argument("role", choices=ROLES)
    grant_role.add_argument("--until", type=_date)

    project = sub.add_parser("project", help="create a project").add_subparsers(dest="op", required=True)
    create = project.add_parser("create")
    create.add_argument("project")
    create.add_argument("--title", required=True)
    create.add_argument("--legal-basis", required=True, help="e.g. the CNIL authorisation reference")
    create.add_argument("--starts", type=_date, required=True)
    create.add_argument("--ends", type=_date, required=True)
    create.add_argument("--members", nargs="+", required=True, help="at least two users")
    close = project.add_parser("close", help="destroy the project's data and key, end its access")
    close.add_argument("project")
    close.add_argument("--reason", required=True)

    member = sub.add_parser("member", help="add or revoke a project member").add_subparsers(dest="op", required=True)
    m_add = member.add_parser("add")
    m_add.add_argument("project")
    m_add.add_argument("user")
    m_add.add_argument("--until", type=_date)
    m_revoke = member.add_parser("revoke")
    m_revoke.add_argument("project")
    m_revoke.add_argument("user")

    grant = sub.add_parser("grant", help="grant data to a project").add_subparsers(dest="op", required=True)
    g_add = grant.add_parser("add")
    g_add.add_argument("project")
    g_add.add_argument("--columns", nargs="+", required=True, metavar="TABLE.COLUMN", help="or TABLE.*")
    g_add.add_argument("--period", nargs=2, type=_date, required=True, metavar=("FROM", "TO"))
    g_add.add_argument("--until", type=_date)

    sub.add_parser("revoke", help="revoke a role, membership or grant (at once)").add_argument("id")
    sub.add_parser("approve", help="approve another administrator's self-grant").add_argument("id")
    show = sub.add_parser("show", help="list the store")
    show.add_argument("what", choices=["users", "projects", "entitlements", "pending", "requests", "storage"])
    show.add_argument("--project")

    check = sub.add_parser("check", help="would the caller be allowed? (dry run, not audited)")
    check.add_argument("action")
    check.add_argument("--project")
    check.add_argument("--columns", nargs="*", default=[], metavar="TABLE.COLUMN")
    check.add_argument("--period", nargs=2, type=_date, metavar=("FROM", "TO"))

    request = sub.add_parser("request", help="imports and exports").add_subparsers(dest="op", required=True)
    submit = request.add_parser("submit")
    submit.add_argument("project")
    submit.add_argument("path")
    submit.add_argument("--direction", choices=["import", "export"], required=True)
    submit.add_argument("--kind", choices=["data", "code"], required=True)
    submit.add_argument("--columns", nargs="*", default=[], metavar="TABLE.COLUMN",
                        help="the SNDS data it holds; checked against the project's grants")
    submit.add_argument("--period", nargs=2, type=_date, metavar=("FROM", "TO"),
                        help="the period of that data (required with --columns)")
    review = request.add_parser("review")
    review.add_argument("id")
    decision = review.add_mutually_exclusive_group(required=True)
    decision.add_argument("--approve", action="store_true")
    decision.add_argument("--reject", action="store_true")
    review.add_argument("--reason", required=True)

    trail = sub.add_parser("audit", help="verify or read the audit trail").add_subparsers(dest="op", required=True)
    verify = trail.add_parser("verify")
    verify.add_argument("--anchor", action="append", default=[], metavar="SEQ:HASH",
                        help="a head printed earlier by 'audit head'; repeatable")
    trail.add_parser("head")
    show_trail = trail.add_parser("show")
    show_trail.add_argument("--last", type=int, default=20)


def body(run: JobRun):
    a, me = run.args, run.caller
    gov = run.governance()
    say = run.summary.append
    op = getattr(a, "op", None)
    if a.area == "init":
        made = gov.init(me, a.roles)
        say(f"{me} is the first administrator ({', '.join(a.roles)})" if made
            else f"already initialised; {me} is an administrator")
    elif a.area == "whoami":
        rows = gov.table("entitlements").where((F.col("user") == me) & (F.col("status") != "revoked")).orderBy("kind").collect()
        say(f"{me}:" if rows else f"{me}: no role, no project")
        for e in rows:
            say(f"  {e.kind:<7} {e.role or e.project:<20} {e.status:<8} {e.starts} .. {e.ends or '-'}  {e.id}")
    elif a.area == "user" and op == "add":
        ids = gov.add_user(me, a.user, a.name, a.roles, a.until)
        say(f"added {a.user}" + (f" with {', '.join(a.roles)} ({', '.join(ids)})" if ids else ""))
    elif a.area == "user":
        gov.deactivate_user(me, a.user)
        say(f"deactivated {a.user}")
    elif a.area == "role":
        say(f"{a.role} for {a.user}: {gov.grant_role(me, a.user, a.role, a.until)}")
    elif a.area == "project" and op == "close":
        closed = close_project(gov, Requests(gov, run.settings.access.outbox), run.keys, me, a.project, a.reason)
        run.summary += closed.summary()
    elif a.area == "project":
        ids = gov.create_project(me, a.project, a.title, a.legal_basis, a.starts, a.ends, a.members)
        say(f"created project {a.project} with {', '.join(sorted(set(a.members)))} ({', '.join(ids)})")
    elif a.area == "member" and op == "add":
        say(f"{a.user} in {a.project}: {gov.add_member(me, a.project, a.user, a.until)}")
    elif a.area == "member":
        say(f"revoked {', '.join(gov.revoke_member(me, a.project, a.user))}")
    elif a.area == "grant":
        say(f"grant to {a.project}: {gov.grant(me, a.project, a.columns, tuple(a.period), a.until)}")
    elif a.area == "revoke":
        gov.revoke(me, a.id)
        say(f"revoked {a.id}")
    elif a.area == "approve":
        gov.approve(me, a.id)
        say(f"approved {a.id}")
    elif a.area == "show" and a.what == "storage":
        run.authorize("admin")
        show_storage(run, a.project)
    elif a.area == "show":
        run.authorize("audit" if a.what == "requests" else "admin")  # reviewers see requests
        show(run, gov, a.what, a.project)
    elif a.area == "check":
        if a.action in ("read", "export") and not a.period:
            print(f"error: check {a.action} needs --period FROM TO (a grant covers a period)", file=sys.stderr)
            return ExitCode.USAGE
        why = gov.allowed(me, a.action, _asked(a))
        say(f"{me} may {a.action}" if why is None else f"{me} may not {a.action}: {why}")
        return ExitCode.OK if why is None else ExitCode.REFUSED
    elif a.area == "request":
        requests = Requests(gov, run.settings.access.outbox)
        if op == "submit":
            if a.columns and not a.period:
                print("error: request submit --columns needs --period FROM TO", file=sys.stderr)
                return ExitCode.USAGE
            run.place(a.path, "read", project=a.project)
            run.input(a.path)
            rid = requests.submit(me, a.project, a.direction, a.kind, a.path, _asked(a))
            say(f"submitted {rid}: waiting for a reviewer other than {me}")
        else:
            where = requests.review(me, a.id, a.approve, a.reason)
            say(f"{'approved' if a.approve else 'rejected'} {a.id}" + (f": delivered to {where}" if where else ""))
    elif a.area == "audit":
        run.authorize("audit")
        return trail(run, op, a)
    return ExitCode.OK


def _asked(a) -> Resource:
    """The project, TABLE.COLUMNs and period a `check` or a `request submit` names."""
    return Resource.of(a.project, a.columns, tuple(a.period) if a.period else None)


def show(run: JobRun, gov: Governance, what: str, project: str | None) -> None:
    if what == "requests":
        df = Requests(gov, run.settings.access.outbox).list(project).drop("files")
    else:
        df = gov.table("users" if what == "users" else "projects" if what == "projects" else "entitlements")
        if what == "pending":
            df = df.where("status = 'pending'")
        if project and "project" in df.columns:
            df = df.where(df.project == project)
    rows = df.collect()  # the governance store: users, projects and grants, not data
    if not rows:
        run.summary.append(f"no {what}")
    for r in rows:
        run.summary.append("  ".join(f"{k}={v}" for k, v in r.asDict().items() if v not in (None, [])))


def show_storage(run: JobRun, project: str | None) -> None:
    """Bytes, files and Delta versions per area and project, then per table (largest first)."""
    rows = [u for u in storage_usage(run.warehouse.root) if project is None or u.project == project]
    say = run.summary.append
    say(f"{'area':<16} {'project':<12} {'files':>10} {'bytes':>16} {'versions':>9}")
    for (area, proj), (files, size, versions) in sorted(totals(rows).items(), key=lambda kv: -kv[1][1]):
        say(f"{area:<16} {proj or '-':<12} {files:>10,} {size:>16,} {versions:>9,}")
    say("tables, largest first:")
    for u in sorted(rows, key=lambda u: -u.bytes)[:50]:
        say(f"  {u.area + '/' + (u.project + '/' if u.project else '') + u.table:<48} {u.files:>8,} files "
            f"{u.bytes:>14,} bytes {u.versions:>6,} versions")


def trail(run: JobRun, op: str, a) -> int:
    path = run.home.audit
    if op == "head":
        run.summary.append(audit.head(run.spark, path) or "the audit trail is empty")
        return ExitCode.OK
    if op == "show":
        rows = audit.read(run.spark, path).orderBy("seq", ascending=False).limit(a.last).collect()
        for r in reversed(rows):
            run.summary.append(f"{r.seq:>7} {r.ended_at:%Y-%m-%d %H:%M:%S} {r.user:<12} {r.job:<24} {r.outcome:<9} "
                               f"{(r.message or '')[:120]}")
        return ExitCode.OK
    try:
        report = audit.verify(run.spark, path, a.anchor)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return ExitCode.USAGE
    run.count("audit records", report.records)
    if report.intact:
        run.summary.append(f"audit trail intact: {report.records} records, head {report.head}")
        return ExitCode.OK
    run.summary.append(f"audit trail BROKEN at record {report.first_broken_seq}: {report.reason} "
                       f"({report.records} records)")
    return ExitCode.THRESHOLD


if __name__ == "__main__":
    sys.exit(run_job("admin", __doc__, body, add_arguments))
