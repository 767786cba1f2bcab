"""Keyed HMAC-SHA256 in the JVM: byte-identical to `cryptography`, and the key leaks nowhere."""

from __future__ import annotations

import base64
import random

import pytest
from chispa import assert_df_equality
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from pds_spark.pseudo import SecretKey, pseudonymise


def reference(key: bytes, value: str | None) -> str | None:
    if value is None:
        return None
    h = crypto_hmac.HMAC(key, hashes.SHA256())
    h.update(value.encode("utf-8"))
    return h.finalize().hex()


def values() -> list[str | None]:
    rnd = random.Random(42)
    alphabet = "abcXYZ019 -'éèçàÉœ€ßø漢字🙂\u0000\t"
    out = ["", None, "a", "é", "🙂", "x" * 55, "x" * 56, "y" * 64, "z" * 1000, "1840675123456 78"]
    out += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 130))) for _ in range(120)]
    return out


KEYS = [b"k", b"\x00" * 16, bytes(range(32)), b"\xff" * 63, b"K" * 64, b"L" * 65, bytes(range(200)) + b"tail"]


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{len(k)}-bytes")
def test_hmac_is_byte_identical_to_cryptography(spark, key):
    data = [(i, v) for i, v in enumerate(values())]
    df = spark.createDataFrame(data, "id int, v string")
    got = pseudonymise(df, ["v"], SecretKey(key))
    expected = spark.createDataFrame([(i, reference(key, v)) for i, v in data], "id int, v string")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_nulls_stay_null_and_other_columns_pass_through(spark):
    df = spark.createDataFrame([("A", None, 1), (None, "B", 2)], "a string, b string, n int")
    out = pseudonymise(df, ["a", "b"], SecretKey(b"secret")).orderBy("n").collect()
    assert out[0].b is None and out[1].a is None and [r.n for r in out] == [1, 2]
    assert out[0].a == reference(b"secret", "A")
    with pytest.raises(ValueError, match="missing: nope"):
        pseudonymise(df, ["nope"], SecretKey(b"secret"))


def test_the_key_object_never_prints_its_material():
    key = SecretKey(b"do-not-print-me", key_id="snds-2026")
    assert "do-not-print-me" not in repr(key) + str(key) + f"{key}"
    with pytest.raises(TypeError):
        __import__("pickle").dumps(key)


def _forms(secret: bytes) -> list[str]:
    """Every way the key could be written: raw, hex, base64, and its padded blocks."""
    key = SecretKey(secret)
    forms = []
    for material in (secret, *key.pads()):
        forms += [material.hex(), material.hex().upper(), base64.b64encode(material).decode()]
        forms.append(material.decode("latin-1"))
        forms.append(", ".join(str(b if b < 128 else b - 256) for b in material[:16]))  # byte arrays
    return [f for f in forms if len(f) >= 8]


def test_the_key_is_in_no_plan_event_log_or_ui_page(spark, tmp_path):
    secret = b"pds-leak-probe-8c1f2e7d9a"
    df = spark.createDataFrame([("1840675123456",), ("2750112345678",)], "BEN_NIR_PSA string")
    out = pseudonymise(df, ["BEN_NIR_PSA"], SecretKey(secret))
    out.write.mode("overwrite").parquet(str(tmp_path / "out"))
    texts = [out._jdf.queryExecution().explainString(
        spark._jvm.org.apache.spark.sql.execution.ExplainMode.fromString(mode))
        for mode in ("simple", "extended", "codegen", "cost", "formatted")]
    status = spark._jsparkSession.sharedState().statusStore()
    executions = status.executionsList()
    for i in range(executions.size()):  # what the SQL tab of the UI renders
        texts.append(executions.apply(i).physicalPlanDescription())
    event_dir = spark.conf.get("spark.eventLog.dir").replace("file:", "")
    import pathlib
    for log in pathlib.Path(event_dir).rglob("*"):
        if log.is_file():
            spark.sparkContext._jvm.System.out.flush()
            texts.append(log.read_bytes().decode("utf-8", errors="replace"))
    assert len(texts) > 6
    joined = "\n".join(texts)
    for form in _forms(secret):
        assert form not in joined, f"key material found in the form {form[:6]}..."
