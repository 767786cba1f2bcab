"""What the governance store holds, and the decision made from it.

Users, projects and entitlements (roles, project memberships, project grants) are
small Delta tables; `decide` is a pure function over their rows for one caller, so the
rules are tested without Spark and the same code decides in every job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from pyspark.sql import types as T

from pds_spark.errors import ExitCode, PdsError

ROLES = ("admin", "engineer", "analyst", "reviewer")
ROLE_NAMES = {"admin": "platform administrator", "engineer": "data engineer",
              "analyst": "project analyst", "reviewer": "reviewer"}

# Jobs on the warehouse as a whole need a role; project work needs membership and grants.
ROLE_ACTIONS = {
    "ingest": ("engineer",), "pseudonymise": ("engineer",), "quality": ("engineer",),
    "pipeline": ("engineer",), "build_events": ("engineer",), "mirror": ("admin", "engineer"),
    "link_snds": ("engineer",),
    "validate_conformity": ("engineer", "reviewer"),
    "keys": ("admin",), "admin": ("admin",), "review": ("reviewer",), "audit": ("admin", "reviewer"),
}
# read and export need a grant covering the data; transfer (a reviewed import or export) a current
# grant, covering the data when it names any; use (a project's own area) and import membership only
PROJECT_ACTIONS = ("read", "export", "transfer", "import", "use")

USERS = T.StructType([
    T.StructField("user", T.StringType(), False),
    T.StructField("name", T.StringType(), False),
    T.StructField("active", T.BooleanType(), False),
    T.StructField("changed_by", T.StringType(), False),
    T.StructField("changed_at", T.TimestampType(), False),
])
PROJECTS = T.StructType([
    T.StructField("project", T.StringType(), False),
    T.StructField("title", T.StringType(), False),
    T.StructField("legal_basis", T.StringType(), False),
    T.StructField("starts", T.DateType(), False),
    T.StructField("ends", T.DateType(), False),
    T.StructField("created_by", T.StringType(), False),
    T.StructField("created_at", T.TimestampType(), False),
])
ENTITLEMENTS = T.StructType([
    T.StructField("id", T.StringType(), False),
    T.StructField("kind", T.StringType(), False),  # role | member | grant
    T.StructField("user", T.StringType(), True),  # role, member
    T.StructField("project", T.StringType(), True),  # member, grant
    T.StructField("role", T.StringType(), True),  # role
    T.StructField("columns", T.ArrayType(T.StringType(), False), True),  # grant: TABLE.COLUMN or TABLE.*
    T.StructField("period_from", T.DateType(), True),  # grant
    T.StructField("period_to", T.DateType(), True),
    T.StructField("identifying", T.StringType(), True),  # grant: its one quasi-identifier category
    T.StructField("starts", T.DateType(), False),
    T.StructField("ends", T.DateType(), True),
    T.StructField("status", T.StringType(), False),  # active | pending | revoked
    T.StructField("granted_by", T.StringType(), False),
    T.StructField("granted_at", T.TimestampType(), False),
    T.StructField("approved_by", T.StringType(), True),
    T.StructField("revoked_by", T.StringType(), True),
    T.StructField("revoked_at", T.TimestampType(), True),
])


class Described(Protocol):
    """What a refusal names: a `Resource`, or anything that describes itself (settings)."""

    def describe(self) -> str: ...


class Refused(PdsError):
    """The caller may not do this; the message names what was refused and why."""

    exit_code = ExitCode.REFUSED

    def __init__(self, caller: str, action: str, resource: Described, why: str):
        self.caller, self.action, self.resource, self.why = caller, action, resource, why
        super().__init__(f"refused: {caller} may not {action} {resource.describe()}: {why}")


@dataclass(frozen=True)
class Resource:
    """What an action touches: a project, tables with their columns, a period."""

    project: str | None = None
    columns: Mapping[str, Sequence[str]] = field(default_factory=dict)  # table -> columns ('*' = all)
    period: tuple[date, date] | None = None

    @classmethod
    def of(cls, project: str | None = None, columns: Iterable[str] = (),
           period: tuple[date, date] | None = None) -> Resource:
        """From 'TABLE.COLUMN' / 'TABLE.*' / 'TABLE' names."""
        by_table: dict[str, list[str]] = {}
        for name in columns:
            table, _, column = name.partition(".")
            by_table.setdefault(table, []).append(column or "*")
        return cls(project, {t: tuple(c) for t, c in by_table.items()}, period)

    def describe(self) -> str:
        parts = []
        if self.project:
            parts.append(f"project {self.project}")
        if self.columns:
            parts.append(", ".join(f"{t}({', '.join(c)})" for t, c in sorted(self.columns.items())))
        if self.period:
            parts.append(f"period {self.period[0]}..{self.period[1]}")
        return " ".join(parts) or "the platform"


def _current(row: Mapping, today: date) -> bool:
    return row["status"] == "active" and row["starts"] <= today and (row["ends"] is None or today <= row["ends"])


def _why_not_current(rows: list[Mapping], today: date, what: str) -> str:
    """The most telling reason among non-current entitlements of the right kind."""
    for row in sorted(rows, key=lambda r: r["granted_at"], reverse=True):
        if row["status"] == "revoked":
            return f"{what} was revoked by {row['revoked_by']} on {row['revoked_at']:%Y-%m-%d %H:%M}"
        if row["status"] == "pending":
            return f"{what} ({row['id']}) is pending approval by a second administrator"
        if row["ends"] is not None and row["ends"] < today:
            return f"{what} expired on {row['ends']}"
        if row["starts"] > today:
            return f"{what} starts on {row['starts']}"
    return ""


def roles_of(entitlements: Iterable[Mapping], user: str, today: date) -> set[str]:
    return {e["role"] for e in entitlements if e["kind"] == "role" and e["user"] == user and _current(e, today)}


def covers(grant: Mapping, table: str, column: str) -> bool:
    granted = set(grant["columns"] or ())
    return f"{table}.*" in granted or (column != "*" and f"{table}.{column}" in granted)


def decide(caller: str, action: str, resource: Resource, *, user: Mapping | None,
           project: Mapping | None, entitlements: Sequence[Mapping], today: date,
           categories: Callable[[list[str]], Mapping[str, list[str]]]) -> str | None:
    """None if allowed, otherwise why not. `entitlements` are the caller's and the project's."""
    if user is None:
        return f"{caller} is not a registered user"
    if not user["active"]:
        return f"{caller} was deactivated by {user['changed_by']} on {user['changed_at']:%Y-%m-%d}"
    if action in ROLE_ACTIONS:
        needed = ROLE_ACTIONS[action]
        held = roles_of(entitlements, caller, today)
        if held & set(needed):
            return None
        mine = [e for e in entitlements if e["kind"] == "role" and e["user"] == caller and e["role"] in needed]
        why = _why_not_current(mine, today, f"the {needed[0]} role")
        return why or (f"this needs the role {' or '.join(ROLE_NAMES[r] for r in needed)}; "
                       f"{caller} holds {', '.join(sorted(held)) or 'no role'}")
    if action not in PROJECT_ACTIONS:
        return f"unknown action {action!r}"
    if not resource.project:
        return "no project named"
    if project is None:
        return f"there is no project {resource.project}"
    if not project["starts"] <= today <= project["ends"]:
        return f"project {resource.project} runs from {project['starts']} to {project['ends']}"
    memberships = [e for e in entitlements if e["kind"] == "member" and e["user"] == caller
                   and e["project"] == resource.project]
    if not any(_current(m, today) for m in memberships):
        why = _why_not_current(memberships, today, f"{caller}'s membership of {resource.project}")
        return why or f"{caller} is not a member of project {resource.project}"
    if action in ("import", "use"):
        return None
    grants = [e for e in entitlements if e["kind"] == "grant" and e["project"] == resource.project]
    if action == "transfer" and not resource.columns:
        if any(_current(g, today) for g in grants):
            return None
        why = _why_not_current(grants, today, f"the last grant of project {resource.project}")
        return why or f"project {resource.project} has no grant: nothing of it may be transferred"
    if not resource.columns:
        return "no table named"
    wanted = [c for cols in resource.columns.values() for c in cols if c != "*"]
    found = categories(wanted)
    if len(found) > 1:
        listed = "; ".join(f"{cat}: {', '.join(cols)}" for cat, cols in sorted(found.items()))
        return f"at most one potentially identifying column may be used, asked for {len(found)} ({listed})"
    current = [g for g in grants if _current(g, today)]
    for table, columns in sorted(resource.columns.items()):
        if not any(c.startswith(f"{table}.") for g in grants for c in g["columns"] or ()):
            return f"table {table} is not granted to project {resource.project}"
        usable = [g for g in current if all(covers(g, table, c) for c in columns)]
        if not usable:
            touching = [g for g in grants if all(covers(g, table, c) for c in columns)]
            why = _why_not_current(touching, today, f"the grant of {table}")
            if why:
                return why
            missing = [c for c in columns if not any(covers(g, table, c) for g in current)]
            return (f"{', '.join(f'{table}.{c}' for c in missing)} not granted to project {resource.project}"
                    if missing else f"no single grant of project {resource.project} covers all of {table}'s columns")
        if resource.period:
            lo, hi = resource.period
            if not any(g["period_from"] <= lo and hi <= g["period_to"] for g in usable):
                spans = ", ".join(f"{g['period_from']}..{g['period_to']}" for g in usable)
                return f"period {lo}..{hi} of {table} is outside the granted period ({spans})"
    return None
