"""Access and authorisations: every overreach is refused and audited; requests are reviewed."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from pyspark.sql import functions as F

from pds_spark import audit
from pds_spark.access import Governance, GovernanceError, Refused, Requests, Resource
from pds_spark.access.model import decide
from pds_spark.access.requests import TamperedError
from pds_spark.access.store import _entitlement
from tests.test_conformity import run

TODAY = date.today()
PERIOD = (date(2019, 1, 1), date(2020, 12, 31))
PRS = ["ER_PRS_F.BEN_NIR_PSA", "ER_PRS_F.PRS_NAT_REF", "ER_PRS_F.EXE_SOI_DTD"]


@pytest.fixture(scope="module")
def store(spark, policy, catalogue, tmp_path_factory):
    """ada administers; alice and carol work on p042, eve and carol on p099; bob engineers;
    rita reviews; max is the second administrator."""
    wh = tmp_path_factory.mktemp("governed")

    def expand(table):
        resolved = catalogue.resolve(table)
        return resolved.table.column_names if resolved else None

    gov = Governance(spark, wh, categories=policy.quasi_categories, expand=expand)
    assert gov.init("ada") is True
    for user, roles in [("alice", ["analyst"]), ("carol", ["analyst"]), ("eve", ["analyst"]),
                        ("bob", ["engineer"]), ("rita", ["reviewer"]), ("max", ["admin"])]:
        gov.add_user("ada", user, user.title(), roles)
    ends = TODAY + timedelta(days=365)
    gov.create_project("ada", "p042", "Statins and falls", "CNIL DR-2026-042", date(2025, 1, 1), ends,
                       ["alice", "carol"])
    gov.create_project("ada", "p099", "Another study", "CNIL DR-2026-099", date(2025, 1, 1), ends,
                       ["eve", "carol"])
    gov.grant("ada", "p042", PRS, PERIOD)
    with pytest.raises(GovernanceError, match="before the grant starts"):  # an end before its start
        gov.grant("ada", "p042", ["IR_BEN_R.BEN_SEX_COD"], PERIOD, until=TODAY - timedelta(days=1))
    # a grant that has since expired (written as it would stand a year on)
    gov._append("entitlements", [_entitlement("grant", None, "p042", columns=["IR_BEN_R.BEN_SEX_COD"],
                                              period=PERIOD, starts=TODAY - timedelta(days=30),
                                              ends=TODAY - timedelta(days=1), by="ada")])
    gov.grant("ada", "p099", ["IR_BEN_R.BEN_SEX_COD", "IR_BEN_R.BEN_RES_COM", "IR_BEN_R.BEN_NAI_ANN"], PERIOD)
    return gov


def refused(gov, caller, action, resource, expected):
    with pytest.raises(Refused) as e:
        gov.authorize(caller, action, resource)
    assert expected in str(e.value)
    assert e.value.exit_code == 4
    return str(e.value)


def test_granted_reads_are_allowed(store):
    store.authorize("alice", "read", Resource.of("p042", PRS[:2], (date(2019, 3, 1), date(2019, 12, 31))))
    store.authorize("bob", "ingest", Resource.of(columns=["ER_PRS_F"]))
    store.authorize("eve", "read", Resource.of("p099", ["IR_BEN_R.BEN_RES_COM"]))


def test_every_overreach_is_refused_named_and_audited(store, spark):
    messages = [
        refused(store, "alice", "read", Resource.of("p042", ["ER_PHA_F.PHA_PRS_IDE"]),
                "table ER_PHA_F is not granted to project p042"),
        refused(store, "alice", "read", Resource.of("p042", ["ER_PRS_F.BEN_RES_COM"]),
                "ER_PRS_F.BEN_RES_COM not granted to project p042"),
        refused(store, "alice", "read", Resource.of("p042", PRS[:1], (date(2018, 1, 1), date(2019, 6, 30))),
                "period 2018-01-01..2019-06-30 of ER_PRS_F is outside the granted period (2019-01-01..2020-12-31)"),
        refused(store, "alice", "read", Resource.of("p099", ["IR_BEN_R.BEN_SEX_COD"]),
                "alice is not a member of project p099"),
        refused(store, "alice", "read", Resource.of("p042", ["IR_BEN_R.BEN_SEX_COD"]),
                f"the grant of IR_BEN_R expired on {TODAY - timedelta(days=1)}"),
        refused(store, "eve", "read", Resource.of("p099", ["IR_BEN_R.BEN_RES_COM", "IR_BEN_R.BEN_NAI_MOI"]),
                "at most one potentially identifying column may be used, asked for 2"),
        refused(store, "alice", "ingest", Resource.of(columns=["ER_PRS_F"]), "this needs the role data engineer"),
        refused(store, "mallory", "read", Resource.of("p042", PRS[:1]), "mallory is not a registered user"),
        refused(store, "alice", "admin", Resource(), "platform administrator"),
    ]
    trail = audit.read(spark, store.warehouse.audit).where(F.col("outcome") == "refused")
    recorded = {r.message for r in trail.select("message").collect()}
    assert set(messages) <= recorded


def test_a_grant_never_carries_two_identifying_columns(store):
    with pytest.raises(Refused, match="at most one potentially identifying column per project"):
        store.grant("ada", "p042", ["ER_PRS_F.BEN_RES_COM"], PERIOD)  # p042 already has a care date
    with pytest.raises(Refused, match="care_date, death_date, residence_commune"):
        store.grant("ada", "p099", ["ER_PRS_F.*"], PERIOD)  # all of ER_PRS_F: care and death dates, commune


def test_revocation_takes_effect_at_once(store, spark):
    store.authorize("carol", "read", Resource.of("p042", PRS[:1]))
    store.revoke_member("ada", "p042", "carol")
    message = refused(store, "carol", "read", Resource.of("p042", PRS[:1]), "membership of p042 was revoked by ada")
    store.authorize("carol", "read", Resource.of("p099", ["IR_BEN_R.BEN_SEX_COD"]))  # her other project stands
    store.deactivate_user("ada", "eve")
    refused(store, "eve", "read", Resource.of("p099", ["IR_BEN_R.BEN_SEX_COD"]), "eve was deactivated by ada")
    changes = audit.read(spark, store.warehouse.audit).where(F.col("job").startswith("access."))
    jobs = {(r.job, r.user) for r in changes.select("job", "user").collect()}
    assert {("access.revoke", "ada"), ("access.user.deactivate", "ada"), ("access.grant.grant", "ada"),
            ("access.project.create", "ada")} <= jobs
    assert message in {r.message for r in changes.where("outcome = 'refused'").collect()}


def test_an_administrator_granting_to_themself_needs_a_second_one(store):
    pending = store.grant_role("ada", "ada", "engineer")
    refused(store, "ada", "ingest", Resource(), "pending approval by a second administrator")
    with pytest.raises(Refused, match="cannot approve it"):
        store.approve("ada", pending)
    with pytest.raises(Refused, match="not a registered user|needs the role platform administrator"):
        store.approve("bob", pending)
    store.approve("max", pending)
    store.authorize("ada", "ingest", Resource())
    never = Governance(store.spark, store.root.parent, self_grant="never")
    with pytest.raises(Refused, match="may not grant to themself"):
        never.grant_role("max", "max", "reviewer")


def test_project_needs_two_members_and_a_legal_basis(store):
    with pytest.raises(GovernanceError, match="at least two named members"):
        store.create_project("ada", "p100", "Solo", "CNIL DR-1", TODAY, TODAY, ["alice", "alice"])
    with pytest.raises(GovernanceError, match="legal basis"):
        store.create_project("ada", "p101", "No basis", " ", TODAY, TODAY, ["alice", "bob"])


def test_decide_is_pure():
    user = {"active": True}
    grant = {"kind": "grant", "project": "p1", "columns": ["T.A", "T.B"], "status": "active",
             "starts": date(2020, 1, 1), "ends": None, "period_from": date(2019, 1, 1),
             "period_to": date(2019, 12, 31), "granted_at": None}
    member = {**grant, "kind": "member", "user": "u", "columns": None}
    args = dict(user=user, project={"starts": date(2020, 1, 1), "ends": date(2030, 1, 1)},
                entitlements=[grant, member], today=date(2026, 1, 1),
                categories=lambda cols: {c: [c] for c in cols})
    assert decide("u", "read", Resource.of("p1", ["T.A"]), **args) is None
    assert "asked for 2" in decide("u", "read", Resource.of("p1", ["T.A", "T.B"]), **args)
    assert "runs from" in decide("u", "read", Resource.of("p1", ["T.A"]), **{**args, "today": date(2031, 1, 1)})


def test_imports_and_exports_are_reviewed_by_someone_else(store, tmp_path):
    requests = Requests(store, tmp_path / "outbox")
    cohort = tmp_path / "cohort.csv"
    cohort.write_text("nir;sexe\n1840675123456;1\n")
    code = tmp_path / "analysis"
    (code / "lib").mkdir(parents=True)
    (code / "main.py").write_text("print('hello')\n")
    (code / "lib" / "util.R").write_text("x <- 1\n")

    rid = requests.submit("alice", "p042", "import", "data", cohort)
    with pytest.raises(Refused, match="needs the role reviewer"):
        requests.review("alice", rid, True, "mine")
    where = requests.review("rita", rid, True, "cohort matches the protocol")
    assert (where / "cohort.csv").read_bytes() == cohort.read_bytes()
    assert where.parent == store.root.parent / "projects" / "p042" / "imports"

    code_id = requests.submit("alice", "p042", "export", "code", code)
    stored = requests.get(code_id)["files"]
    assert stored == {"main.py": hashlib.sha256(b"print('hello')\n").hexdigest(),
                      "lib/util.R": hashlib.sha256(b"x <- 1\n").hexdigest()}
    (store.root / "staging" / code_id / "main.py").write_text("import os; os.system('exfiltrate')\n")
    with pytest.raises(TamperedError, match="main.py: changed since submission"):
        requests.review("rita", code_id, True, "ok")
    assert not (tmp_path / "outbox" / "p042" / code_id).exists()
    assert requests.get(code_id)["status"] == "tampered"
    with pytest.raises(GovernanceError, match="already tampered"):
        requests.review("rita", code_id, False, "altered after submission")

    with pytest.raises(Refused, match="bob is not a member of project p042"):
        requests.submit("bob", "p042", "import", "data", cohort)
    store.add_member("ada", "p042", "rita")
    own = requests.submit("rita", "p042", "export", "data", cohort)
    with pytest.raises(Refused, match="a requester cannot review their own request"):
        requests.review("rita", own, True, "fine by me")


def test_a_job_run_by_someone_without_the_role_exits_4_and_is_audited(spark, settings, corpus, tmp_path):
    """The caller is the Spark user; here it is registered as an analyst only."""
    wh = tmp_path / "wh"
    gov = Governance(spark, wh)
    gov.init("ada")
    me = gov.caller()
    gov.add_user("ada", me, "Suite", ["analyst"])
    argv = ["--source", str(corpus / "delivery")]
    from pds_spark.jobrunner import run_job
    from tests.conftest import platform_settings
    from tests.test_conformity import job

    m = job("ingest")
    platform = platform_settings(tmp_path / "conf", paths_warehouse=wh, spark_master="local[2]",
                                 pseudonymisation_keystore=settings.pseudonymisation.keystore)
    assert run_job("ingest", m.__doc__, m.body, m.add_arguments, argv, platform_settings=platform) == 4
    rows = audit.read(spark, str(wh / "audit")).orderBy("seq").collect()
    assert [(r.job, r.outcome) for r in rows[-2:]] == [("access.authorize", "refused"), ("ingest", "refused")]
    assert f"refused: {me} may not ingest" in rows[-1].message and "data engineer" in rows[-1].message
    assert not (wh / "snds").exists()


def test_admin_job_runs_as_the_spark_user(spark, settings, tmp_path):
    assert run("admin", settings, "whoami") == 0
    assert run("admin", settings, "check", "ingest") == 0
    assert run("admin", settings, "check", "read", "--project", "nope", "--columns", "ER_PRS_F.BEN_NIR_PSA",
               "--period", "2019-01-01", "2019-12-31") == 4
    assert run("admin", settings, "check", "read", "--project", "nope", "--columns", "ER_PRS_F.BEN_NIR_PSA") == 2
    assert run("admin", settings, "audit", "verify") == 0
