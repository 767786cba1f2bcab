"""Key store at rest, rotation without identifiers, project keys, and the policy file."""

from __future__ import annotations

import base64
import json

import pytest
from chispa import assert_df_equality
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from pds_spark.errors import SettingsError
from pds_spark.pseudo.datasets import pseudonymise_frame, rekey_tables, table_properties, write_table
from pds_spark.pseudo.keystore import KeyStore, KeyStoreError
from pds_spark.pseudo.policy import Policy
from tests.conftest import KEYSTORE_SECRET, REPO


def material(key) -> bytes:
    return key._material  # tests only: compare with the reference implementation


def ref_hmac(key: bytes, text: str) -> str:
    h = crypto_hmac.HMAC(key, hashes.SHA256())
    h.update(text.encode())
    return h.finalize().hex()


def test_keys_are_encrypted_at_rest_and_need_the_passphrase(tmp_path, monkeypatch):
    store = KeyStore(tmp_path / "ks", "env:PDS_KEYSTORE_SECRET")
    store.create("platform")
    secret = material(store.chain("platform")[0])
    files = b"".join(p.read_bytes() for p in (tmp_path / "ks").iterdir())
    for form in (secret, secret.hex().encode(), base64.b64encode(secret), KEYSTORE_SECRET.encode()):
        assert form not in files
    assert oct((tmp_path / "ks" / "platform.json").stat().st_mode)[-3:] == "600"

    monkeypatch.setenv("PDS_KEYSTORE_SECRET", "another-passphrase-of-some-length")
    with pytest.raises(KeyStoreError, match="wrong passphrase") as err:
        KeyStore(tmp_path / "ks").chain("platform")
    assert KEYSTORE_SECRET not in str(err.value)
    monkeypatch.delenv("PDS_KEYSTORE_SECRET")
    with pytest.raises(KeyStoreError, match="PDS_KEYSTORE_SECRET is empty"):
        KeyStore(tmp_path / "ks").chain("platform")


def test_a_tampered_key_file_is_refused(tmp_path):
    store = KeyStore(tmp_path / "ks")
    store.create("platform")
    path = tmp_path / "ks" / "platform.json"
    entry = json.loads(path.read_text())
    blob = bytearray(base64.b64decode(entry["versions"][0]["wrapped"]))
    blob[20] ^= 1
    entry["versions"][0]["wrapped"] = base64.b64encode(bytes(blob)).decode()
    path.write_text(json.dumps(entry))
    with pytest.raises(KeyStoreError, match="altered"):
        KeyStore(tmp_path / "ks").chain("platform")


def test_concurrent_first_use_creates_one_salt_and_one_key(tmp_path):
    # The loader ensures keys from several table threads at once, and two jobs may share a store.
    from concurrent.futures import ThreadPoolExecutor

    stores = [KeyStore(tmp_path / "ks") for _ in range(6)]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda s: s.ensure("platform"), stores))
    chains = [material(s.chain("platform")[0]) for s in stores] + \
             [material(KeyStore(tmp_path / "ks").chain("platform")[0])]
    assert len(set(chains)) == 1


def test_a_pluggable_wrapper_replaces_the_passphrase(tmp_path):
    store = KeyStore(tmp_path / "ks", "python:tests.kms_stub:wrapper")
    store.create("platform")
    assert len(material(store.chain("platform")[0])) == 32
    with pytest.raises(KeyStoreError, match="cannot load the key wrapper"):
        KeyStore(tmp_path / "ks2", "python:tests.no_such_module:wrapper").create("x")


def test_rotation_rekeys_stored_pseudonyms_without_the_identifiers(spark, tmp_path):
    store = KeyStore(tmp_path / "ks")
    store.create("platform")
    ids = [("1840675123456",), ("2750112345678",), ("",), (None,)]
    df = spark.createDataFrame(ids, "BEN_NIR_PSA string")
    table = tmp_path / "wh" / "IR_BEN_R"
    policy = Policy.load(REPO / "conf" / "pseudonymisation.toml")
    first = pseudonymise_frame(df, "IR_BEN_R", policy, store)
    write_table(first.frame, table, first.properties)
    other = tmp_path / "wh" / "other" / "T_MCO19C"
    mco = pseudonymise_frame(df.withColumnRenamed("BEN_NIR_PSA", "NIR_ANO_17"), "T_MCO19C", policy, store)
    write_table(mco.frame, other, mco.properties)
    assert table_properties(spark, str(table))["pds.pseudonym.platform.version"] == "1"

    store.rotate("platform")
    rekeyed = rekey_tables(spark, store, "platform", [tmp_path / "wh"])
    assert sorted(p for p, *_ in rekeyed) == [str(table), str(other)]
    k1, k2 = (material(k) for k in store.chain("platform"))
    expected = [(ref_hmac(k2, ref_hmac(k1, v)) if v is not None else None,) for (v,) in ids]
    assert_df_equality(spark.read.format("delta").load(str(table)),
                       spark.createDataFrame(expected, "BEN_NIR_PSA string"), ignore_row_order=True)
    assert table_properties(spark, str(table))["pds.pseudonym.platform.version"] == "2"
    # new data pseudonymised at version 2 joins the re-keyed rows: DCIR and PMSI still chain
    fresh = pseudonymise_frame(df, "IR_BEN_R", policy, store).frame
    assert_df_equality(fresh, spark.read.format("delta").load(str(other))
                       .withColumnRenamed("NIR_ANO_17", "BEN_NIR_PSA"), ignore_row_order=True)
    assert rekey_tables(spark, store, "platform", [tmp_path / "wh"]) == []  # a second run changes nothing


def test_an_interrupted_rotation_is_finished_by_running_it_again(spark, tmp_path):
    store = KeyStore(tmp_path / "ks")
    store.create("platform")
    policy = Policy.load(REPO / "conf" / "pseudonymisation.toml")
    df = spark.createDataFrame([("184067512345678",)], "nir string")
    out = pseudonymise_frame(df, "ext", policy, store)
    for name in ("a", "b"):
        write_table(out.frame, tmp_path / "wh" / name, out.properties)
    store.rotate("platform")
    rekey_tables(spark, store, "platform", [tmp_path / "wh" / "a"])  # killed after the first table
    store.rotate("platform")  # and rotated again meanwhile
    done = rekey_tables(spark, store, "platform", [tmp_path / "wh"])
    assert [(p.rsplit("/", 1)[1], a, b) for p, a, b in done] == [("a", 2, 3), ("b", 1, 3)]
    a, b = (spark.read.format("delta").load(str(tmp_path / "wh" / n)).first()[0] for n in "ab")
    keys = [material(k) for k in store.chain("platform")]
    assert a == b == ref_hmac(keys[2], ref_hmac(keys[1], ref_hmac(keys[0], "184067512345678")))


def test_project_keys_give_unlinkable_pseudonyms_and_destroying_one_is_final(spark, tmp_path):
    store = KeyStore(tmp_path / "ks")
    policy = Policy.load(REPO / "conf" / "pseudonymisation.toml")
    df = spark.createDataFrame([(str(1840675123456 + i), i) for i in range(50)], "BEN_NIR_PSA string, n int")
    platform = pseudonymise_frame(df, "ER_PRS_F", policy, store)
    p1 = pseudonymise_frame(platform.frame, "ER_PRS_F", policy, store, platform.properties, project="P1")
    p2 = pseudonymise_frame(df, "ER_PRS_F", policy, store, project="P2")
    assert p1.properties["pds.pseudonym.project-p1.over"] == "platform@1"
    assert "pds.pseudonym.platform.version" not in p1.properties
    pairs = [set(r[0] for r in f.frame.select("BEN_NIR_PSA").collect()) for f in (platform, p1, p2)]
    assert all(len(s) == 50 for s in pairs)
    assert not (pairs[0] & pairs[1]) and not (pairs[1] & pairs[2]) and not (pairs[0] & pairs[2])
    again = pseudonymise_frame(df, "ER_PRS_F", policy, store, project="P1").frame
    assert_df_equality(again, p1.frame, ignore_row_order=True)  # stable within the project

    store.destroy("project-p1")
    entry = (tmp_path / "ks" / "project-p1.json").read_text()
    assert '"wrapped": null' in entry and "destroyed" in entry
    with pytest.raises(KeyStoreError, match="destroyed"):
        pseudonymise_frame(df, "ER_PRS_F", policy, store, project="P1")
    with pytest.raises(KeyStoreError, match="never reused"):
        store.create("project-p1")


def test_policy_errors_name_the_key_and_the_file(tmp_path):
    bad = tmp_path / "policy.toml"
    bad.write_text('[[identifier]]\ncolumns = ["X"]\naction = "hide"\n')
    with pytest.raises(SettingsError, match=r"policy.toml: setting 'identifier\[0\].action': 'hide'"):
        Policy.load(bad)
    bad.write_text('[[identifier]]\ncolumns = ["X"]\naction = "pseudonym"\n')
    with pytest.raises(SettingsError, match=r"'identifier\[0\].key'"):
        Policy.load(bad)
    bad.write_text('[conformity]\nname_share = 2\n')
    with pytest.raises(SettingsError, match="'conformity.name_share'"):
        Policy.load(bad)


def test_the_shipped_policy_chains_dcir_and_pmsi_and_names_the_required_identifiers(policy):
    required = ["BEN_NIR_PSA", "BEN_NIR_ANO", "BEN_IDT_ANO", "ASS_NIR_ANO", "NIR_ANO_17", "NIR_ANO_MAM", "NUM_ENQ"]
    for column in required:
        rule = policy.rule_for("ANY_TABLE", column)
        assert rule is not None and rule.action == "pseudonym" and rule.key == "platform", column
    plan = policy.plan("cohorte_externe", ["id_ext", "nir", "nom", "prenom", "date_naissance", "commune_residence"])
    assert plan.pseudonyms == {"platform": ("nir",)} and plan.drops == ("nom", "prenom")
    assert {c for c, _ in plan.coarsen} == {"date_naissance", "commune_residence"}
    assert set(policy.quasi_identifiers) == {"residence_commune", "birth_year_month", "care_date",
                                             "death_date", "death_commune"}


def test_coarsening_keeps_year_month_and_department(spark, policy, keys):
    df = spark.createDataFrame([("02/11/1972", "41103"), ("31/12/2001", "97411"), (None, None)],
                               "date_naissance string, commune_residence string")
    out = pseudonymise_frame(df, "ext", policy, keys).frame
    assert [tuple(r) for r in out.collect()] == [("1972-11", "41"), ("2001-12", "974"), (None, None)]
