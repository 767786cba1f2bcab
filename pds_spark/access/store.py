"""The governance store: users, projects, roles, memberships and grants as Delta tables.

Every change is checked (the caller must be an administrator), written in one Delta
commit, and audited with who made it. A change that benefits its own author (a role,
a membership or a grant for oneself) waits for a second administrator when
[access] self_grant = "second_admin". `authorize` is the one check every job calls.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pds_spark import audit
from pds_spark.access.model import ENTITLEMENTS, PROJECTS, ROLES, USERS, Described, Refused, Resource, decide, roles_of
from pds_spark.catalog import Catalogue
from pds_spark.errors import ExitCode, PdsError
from pds_spark.pseudo.policy import Policy
from pds_spark.warehouse import SAFE_NAME, Warehouse, delta_exists

TABLES = {"users": USERS, "projects": PROJECTS, "entitlements": ENTITLEMENTS}


class GovernanceError(PdsError):
    """A change that cannot be made as asked (unknown user, bad dates, ...)."""

    exit_code = ExitCode.USAGE


def now() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    return now().date()


class Governance:
    """The store under <warehouse>/governance, and the decisions taken from it."""

    def __init__(self, spark: SparkSession, warehouse: str | Path, *, self_grant: str = "second_admin",
                 categories: Callable[[list[str]], Mapping[str, list[str]]] | None = None,
                 expand: Callable[[str], list[str] | None] | None = None):
        self.spark = spark
        self.warehouse = Warehouse(Path(warehouse))
        self.root = self.warehouse.governance
        self.self_grant = self_grant
        self.categories = categories or (lambda columns: {})
        self.expand = expand  # table -> its columns (None: unknown table); None: names not checked

    @classmethod
    def from_settings(cls, spark: SparkSession, settings, warehouse: str | Path | None = None) -> Governance:
        policy = Policy.from_settings(settings)
        catalogue = None

        def expand(table: str) -> list[str] | None:
            nonlocal catalogue
            catalogue = catalogue or Catalogue.from_settings(settings)
            resolved = catalogue.resolve(table)
            return resolved.table.column_names if resolved else None

        return cls(spark, warehouse or settings.paths.warehouse, self_grant=settings.access.self_grant,
                   categories=policy.quasi_categories, expand=expand)

    # --- reading ------------------------------------------------------------------
    def path(self, name: str) -> str:
        return self.warehouse.governance_table(name)

    def table(self, name: str) -> DataFrame:
        if not delta_exists(self.spark, self.path(name)):
            return self.spark.createDataFrame([], TABLES[name])
        return self.spark.read.format("delta").load(self.path(name))

    def _rows(self, name: str, condition=None) -> list[dict]:
        df = self.table(name)
        return [r.asDict(recursive=True) for r in (df.where(condition) if condition is not None else df).collect()]

    def grants(self, project: str) -> list[dict]:
        """A project's grants, whatever their status (the decision says which count)."""
        return self._rows("entitlements", (F.col("project") == project) & (F.col("kind") == "grant"))

    @property
    def initialised(self) -> bool:
        return delta_exists(self.spark, self.path("entitlements"))

    def caller(self) -> str:
        """Who is calling: the Spark user (authenticated by the cluster in production)."""
        return self.spark.sparkContext.sparkUser()

    # --- the check ----------------------------------------------------------------
    def authorize(self, caller: str, action: str, resource: Resource | None = None) -> None:
        """Allow, or audit the refusal and raise Refused naming what and why."""
        resource = resource or Resource()
        why = self.allowed(caller, action, resource)
        if why is not None:
            self.refuse(caller, action, resource, why)

    def allowed(self, caller: str, action: str, resource: Resource | None = None) -> str | None:
        """The reason a call would be refused, or None (nothing audited: a dry run)."""
        resource = resource or Resource()
        if not self.initialised:
            return "the governance store is empty (an administrator runs: jobs/admin.py init)"
        mine = F.col("user") == caller
        if resource.project:
            mine = mine | (F.col("project") == resource.project)
        users = self._rows("users", F.col("user") == caller)
        projects = self._rows("projects", F.col("project") == resource.project) if resource.project else []
        return decide(caller, action, resource, user=users[0] if users else None,
                      project=projects[0] if projects else None,
                      entitlements=self._rows("entitlements", mine), today=_today(), categories=self.categories)

    def refuse(self, caller: str, action: str, resource: Described, why: str) -> None:
        """Audit a refusal, then raise it."""
        refused = Refused(caller, action, resource, why)
        self.audit_change(caller, "access.authorize", {"action": action, "resource": resource.describe()},
                          outcome="refused", message=str(refused))
        raise refused

    # --- changes ------------------------------------------------------------------
    def audit_change(self, caller: str, job: str, parameters: dict, outcome: str = "success",
               message: str | None = None, outputs: Iterable[str] = ()) -> None:
        record = audit.AuditRecord(job=job, user=caller, parameters=parameters, outputs=list(outputs))
        record.finish(outcome, message)
        audit.append(self.spark, self.warehouse.audit, record)

    def _append(self, name: str, rows: list[tuple]) -> None:
        df = self.spark.createDataFrame(rows, TABLES[name])
        df.write.format("delta").mode("append").save(self.path(name))

    def _update(self, name: str, condition: str, values: dict) -> int:
        table = DeltaTable.forPath(self.spark, self.path(name))
        before = table.toDF().where(condition).count()
        if before:
            table.update(condition, {k: F.lit(v) for k, v in values.items()})
        return before

    def _admin(self, caller: str) -> None:
        self.authorize(caller, "admin", Resource())

    def init(self, caller: str, roles: Iterable[str] = ("admin",), name: str | None = None) -> bool:
        """Make the caller the first administrator of an empty store; False if already done."""
        roles = _roles(roles)
        if "admin" not in roles:
            raise GovernanceError("init: the first user must hold the admin role")
        if self.initialised:
            if "admin" in roles_of(self._rows("entitlements", F.col("user") == caller), caller, _today()):
                return False
            self.authorize(caller, "admin")  # refused and audited
        today = _today()
        self._append("users", [(caller, name or caller, True, caller, now())])
        self._append("projects", [])
        self._append("entitlements", [_entitlement("role", caller, None, role=r, starts=today, by=caller)
                                      for r in sorted(roles)])
        self.audit_change(caller, "access.init", {"roles": sorted(roles)}, outputs=[str(self.root)])
        return True

    def add_user(self, caller: str, user: str, name: str, roles: Iterable[str] = (),
                 until: date | None = None) -> list[str]:
        """Register a user with roles (one commit each for the user and the roles)."""
        self._admin(caller)
        _check_name(user, "user")
        _check_until(until, _today())
        roles = sorted(_roles(roles))
        if self._rows("users", F.col("user") == user):
            raise GovernanceError(f"user {user} already exists")
        rows = [_entitlement("role", user, None, role=r, starts=_today(), ends=until, by=caller,
                             status=self._status(caller, user == caller)) for r in roles]
        self._append("users", [(user, name, True, caller, now())])
        if rows:
            self._append("entitlements", rows)
        self.audit_change(caller, "access.user.add", {"user": user, "name": name, "roles": roles, "until": until,
                                                "ids": [r[0] for r in rows]})
        return [r[0] for r in rows]

    def deactivate_user(self, caller: str, user: str) -> None:
        """At once: every check after this commit refuses the user."""
        self._admin(caller)
        if not self._update("users", f"user = '{_sql(user)}'", {"active": False, "changed_by": caller,
                                                                  "changed_at": now()}):
            raise GovernanceError(f"no user {user}")
        self.audit_change(caller, "access.user.deactivate", {"user": user})

    def grant_role(self, caller: str, user: str, role: str, until: date | None = None) -> str:
        self._admin(caller)
        self._known_users(user)
        _check_until(until, _today())
        (role,) = _roles([role])
        row = _entitlement("role", user, None, role=role, starts=_today(), ends=until, by=caller,
                           status=self._status(caller, user == caller))
        return self._grant(caller, row, {"user": user, "role": role, "until": until})

    def create_project(self, caller: str, project: str, title: str, legal_basis: str,
                       starts: date, ends: date, members: Iterable[str]) -> list[str]:
        """A project needs a legal basis, dates, and at least two named members."""
        self._admin(caller)
        _check_name(project, "project")
        members = sorted(set(members))
        if len(members) < 2:
            raise GovernanceError(f"project {project}: at least two named members are required, got {len(members)}")
        if not legal_basis.strip():
            raise GovernanceError(f"project {project}: a legal basis (e.g. the CNIL authorisation) is required")
        if ends < starts:
            raise GovernanceError(f"project {project}: ends ({ends}) before it starts ({starts})")
        if self._rows("projects", F.col("project") == project):
            raise GovernanceError(f"project {project} already exists")
        self._known_users(*members)
        rows = [_entitlement("member", user, project, starts=max(_today(), starts), ends=ends, by=caller,
                             status=self._status(caller, user == caller)) for user in members]
        self._append("entitlements", rows)  # first: the project appears with its members
        self._append("projects", [(project, title, legal_basis, starts, ends, caller, now())])
        self.audit_change(caller, "access.project.create", {
            "project": project, "title": title, "legal_basis": legal_basis, "starts": starts, "ends": ends,
            "members": members, "ids": [r[0] for r in rows]})
        return [r[0] for r in rows]

    def add_member(self, caller: str, project: str, user: str, until: date | None = None) -> str:
        self._admin(caller)
        info = self._project(project)
        self._known_users(user)
        _check_until(until, max(_today(), info["starts"]))
        row = _entitlement("member", user, project, starts=max(_today(), info["starts"]),
                           ends=min(until or info["ends"], info["ends"]), by=caller,
                           status=self._status(caller, user == caller))
        return self._grant(caller, row, {"project": project, "user": user, "until": until})

    def grant(self, caller: str, project: str, columns: Iterable[str], period: tuple[date, date],
              until: date | None = None) -> str:
        """Grant a project tables/columns (TABLE.COLUMN, or TABLE.* for all) over a period."""
        self._admin(caller)
        info = self._project(project)
        wanted = self._columns(columns)
        if period[1] < period[0]:
            raise GovernanceError(f"grant: period ends ({period[1]}) before it starts ({period[0]})")
        starts = max(_today(), info["starts"])
        _check_until(until, starts, "the grant")
        categories = self.categories([c.partition(".")[2] for c in wanted])
        others = [g for g in self._rows("entitlements", (F.col("project") == project) & (F.col("kind") == "grant")
                                        & (F.col("status") != "revoked"))
                  if g["identifying"] and (g["ends"] is None or g["ends"] >= _today())]
        found = set(categories) | {g["identifying"] for g in others}
        if len(found) > 1:
            listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(categories.items()))
            self.refuse(caller, "grant", Resource(project, {}, period),
                        f"at most one potentially identifying column per project; this would give "
                        f"{', '.join(sorted(found))} ({listed or 'already granted'})")
        me = self._rows("entitlements", (F.col("user") == caller) & (F.col("project") == project)
                        & (F.col("kind") == "member"))
        is_member = any(m["status"] == "active" for m in me)
        row = _entitlement("grant", None, project, columns=wanted, period=period,
                           identifying=next(iter(found), None) if categories else None,
                           starts=starts, ends=min(until or info["ends"], info["ends"]),
                           by=caller, status=self._status(caller, is_member))
        return self._grant(caller, row, {"project": project, "columns": wanted, "period": period, "until": until})

    def revoke(self, caller: str, entitlement_id: str) -> None:
        """Revocation takes effect with this commit: the next check refuses."""
        self._admin(caller)
        n = self._update("entitlements", f"id = '{_sql(entitlement_id)}' AND status != 'revoked'",
                         {"status": "revoked", "revoked_by": caller, "revoked_at": now()})
        if not n:
            raise GovernanceError(f"no active or pending entitlement {entitlement_id}")
        self.audit_change(caller, "access.revoke", {"id": entitlement_id})

    def revoke_member(self, caller: str, project: str, user: str) -> list[str]:
        ids = [e["id"] for e in self._rows("entitlements", (F.col("project") == project) & (F.col("user") == user)
                                           & (F.col("kind") == "member") & (F.col("status") != "revoked"))]
        if not ids:
            raise GovernanceError(f"{user} is not a member of {project}")
        for i in ids:
            self.revoke(caller, i)
        return ids

    def approve(self, caller: str, entitlement_id: str) -> None:
        """A second administrator approves a self-granted change."""
        self._admin(caller)
        rows = self._rows("entitlements", F.col("id") == entitlement_id)
        if not rows or rows[0]["status"] != "pending":
            raise GovernanceError(f"no pending entitlement {entitlement_id}")
        if rows[0]["granted_by"] == caller:
            self.refuse(caller, "approve", Resource(), "the administrator who made a change cannot approve it")
        self._update("entitlements", f"id = '{_sql(entitlement_id)}' AND status = 'pending'",
                     {"status": "active", "approved_by": caller})
        self.audit_change(caller, "access.approve", {"id": entitlement_id})

    def _grant(self, caller: str, row: tuple, parameters: dict) -> str:
        self._append("entitlements", [row])
        kind, status = row[1], row[11]
        self.audit_change(caller, f"access.{kind}.grant", {**parameters, "id": row[0], "status": status})
        return row[0]

    def _status(self, caller: str, for_self: bool) -> str:
        if not for_self or self.self_grant == "allowed":
            return "active"
        if self.self_grant == "never":
            self.refuse(caller, "grant", Resource(), "an administrator may not grant to themself")
        return "pending"

    def _known_users(self, *users: str) -> None:
        missing = set(users) - {u["user"] for u in self._rows("users", F.col("user").isin(*users))}
        if missing:
            raise GovernanceError(f"no user {', '.join(sorted(missing))} (add it first: jobs/admin.py user add)")

    def _project(self, project: str) -> dict:
        rows = self._rows("projects", F.col("project") == project)
        if not rows:
            raise GovernanceError(f"no project {project}")
        return rows[0]

    def _columns(self, columns: Iterable[str]) -> list[str]:
        out: list[str] = []
        for name in columns:
            table, dot, column = name.partition(".")
            if not table or not dot or not column:
                raise GovernanceError(f"grant: {name!r} is not TABLE.COLUMN or TABLE.*")
            if self.expand is None:  # no catalogue given (a store built by hand)
                out.append(name)
                continue
            known = self.expand(table)
            if known is None:
                raise GovernanceError(f"grant: no table {table!r} in the catalogue")
            if column == "*":
                out += [f"{table}.{c}" for c in known]
            elif column not in known:
                raise GovernanceError(f"grant: table {table} has no column {column!r} in the catalogue")
            else:
                out.append(name)
        return sorted(set(out))


def _entitlement(kind: str, user: str | None, project: str | None, *, role: str | None = None,
                 columns: list[str] | None = None, period: tuple[date, date] | None = None,
                 identifying: str | None = None, starts: date, ends: date | None = None, by: str,
                 status: str = "active") -> tuple:
    return (f"{kind}-{uuid.uuid4().hex[:12]}", kind, user, project, role, columns,
            period[0] if period else None, period[1] if period else None, identifying,
            starts, ends, status, by, now(), None, None, None)


def _roles(roles: Iterable[str]) -> set[str]:
    roles = set(roles)
    unknown = roles - set(ROLES)
    if unknown:
        raise GovernanceError(f"unknown role(s) {', '.join(sorted(unknown))} (known: {', '.join(ROLES)})")
    return roles


def _check_until(until: date | None, starts: date, what: str = "the entitlement") -> None:
    if until is not None and until < starts:
        raise GovernanceError(f"--until {until} is before {what} starts ({starts})")


USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")


def _check_name(value: str, what: str) -> None:
    pattern, allowed = (USER_NAME, "letters, digits, '_', '-', '.', '@'") if what == "user" else \
        (SAFE_NAME, "letters, digits and '_'")
    if not pattern.match(value):
        raise GovernanceError(f"{what} name {value!r}: {allowed} only")


def _sql(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


