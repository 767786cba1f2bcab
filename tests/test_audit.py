import threading

from pyspark.sql import functions as F

from pds_spark import audit
from pds_spark.jobrunner import run_job


def test_parameters_are_recorded_without_secrets():
    assert audit.redact({"table": "ER_PRS_F", "hmac_key": "s3cr3t", "key_id": "", "password": None}) == {
        "hmac_key": "<redacted>", "key_id": "", "password": None, "table": "ER_PRS_F"}


def test_records_form_a_hash_chain(spark, tmp_path):
    path = str(tmp_path / "audit")
    for i in range(3):
        rec = audit.AuditRecord(job=f"job{i}", user="alice", parameters={"salt": "x", "n": i},
                                row_counts={"b": 2, "a": 1}, outputs=["snds/ER_PRS_F"])
        rec.finish("success")
        assert audit.append(spark, path, rec) == i + 1
    rows = audit.read(spark, path).orderBy("seq").collect()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == audit.GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.record_hash for r in rows[:-1]]
    assert '"salt": "<redacted>"' in rows[0].parameters
    assert audit.verify(spark, path).intact


def test_concurrent_writers_never_fork_the_chain(spark, tmp_path):
    path = str(tmp_path / "audit")
    errors = []

    def write(i):
        try:
            rec = audit.AuditRecord(job=f"w{i}", user="bob")
            rec.finish("success")
            audit.append(spark, path, rec)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    seqs = sorted(r.seq for r in audit.read(spark, path).select("seq").collect())
    assert seqs == [1, 2, 3, 4]
    assert audit.verify(spark, path).intact


def test_an_edited_record_breaks_the_chain(spark, tmp_path):
    path = str(tmp_path / "audit")
    for i in range(3):
        rec = audit.AuditRecord(job=f"job{i}", user="carol")
        rec.finish("success")
        audit.append(spark, path, rec)
    # rewrite the table's files behind Delta's back-door: change who ran job 2
    df = audit.read(spark, path).withColumn("user", F.when(F.col("seq") == 2, "mallory").otherwise(F.col("user")))
    df.write.format("delta").mode("overwrite").save(str(tmp_path / "forged"))
    report = audit.verify(spark, str(tmp_path / "forged"))
    assert report.first_broken_seq == 2 and "hash" in report.reason


def test_every_job_run_is_audited(spark, settings, warehouse):
    argv = ["--set", f"paths.warehouse={warehouse}", "--set", "spark.master=local[2]"]
    assert run_job("catalog_check_test", "test", lambda run: 0, None, argv) == 0
    assert run_job("catalog_fail_test", "test", lambda run: 1 / 0, None, argv) == 1
    rows = (audit.read(spark, str(warehouse / "audit"))
            .where(F.col("job").startswith("catalog_")).orderBy("seq").collect())
    assert [(r.job, r.outcome) for r in rows[-2:]] == [
        ("catalog_check_test", "success"), ("catalog_fail_test", "failed")]
    assert "ZeroDivisionError" in rows[-1].message
    assert rows[-1].user
