import json
import shutil
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
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


@pytest.fixture(scope="module")
def trail(spark, tmp_path_factory):
    """Six records, one Delta commit each (one data file per record)."""
    path = tmp_path_factory.mktemp("trail") / "audit"
    for i in range(6):
        rec = audit.AuditRecord(job=f"job{i}", user="carol", row_counts={"rows": i})
        rec.finish("success")
        audit.append(spark, str(path), rec)
    return path


def forge(spark, trail, tmp_path, change, keep_checksums=False):
    """Copy the trail, then rewrite its Parquet files and Delta log behind Delta's back:
    `change(rows)` gets every record (seq order) and returns what the files should hold."""
    forged = tmp_path / "forged"
    shutil.copytree(trail, forged)
    log = sorted((forged / "_delta_log").glob("*.json"))
    adds = [(f, json.loads(line)) for f in log for line in f.read_text().splitlines()]
    files = [a["add"]["path"] for _, a in adds if "add" in a]
    rows = sorted((r for name in files for r in pq.read_table(forged / name).to_pylist()), key=lambda r: r["seq"])
    kept = change(rows)
    data = pq.read_table(forged / files[0])
    for name in files:  # every record now in the first file; the other files are emptied
        pq.write_table(pa.Table.from_pylist(kept if name == files[0] else [], schema=data.schema),
                       forged / name, use_deprecated_int96_timestamps=True)
    for f in log:  # keep the log consistent with the files: sizes, no stale statistics
        out = []
        for line in f.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                action["add"]["size"] = (forged / action["add"]["path"]).stat().st_size
                action["add"].pop("stats", None)
            out.append(json.dumps(action))
        f.write_text("\n".join(out) + "\n")
    for crc in {*forged.rglob(".*.crc"), *(forged / "_delta_log").glob("*.crc")}:
        if not keep_checksums:
            crc.unlink(missing_ok=True)  # the local file system's and Delta's checksums of the old files
    return str(forged)


def rehash(rows):
    """What a careful forger does after a change: recompute every hash from there on."""
    prev = audit.GENESIS
    for r in rows:
        r["prev_hash"] = prev
        r["record_hash"] = prev = audit.python_hash(r)
    return rows


def test_the_untouched_copy_verifies(spark, trail, tmp_path):
    report = audit.verify(spark, forge(spark, trail, tmp_path, lambda rows: rows))
    assert report.intact and report.records == 6
    assert audit.verify(spark, forge(spark, trail, tmp_path / "2", rehash)).intact  # Python == Spark hash


def _set(rows, position, **values):
    rows[position - 1].update(values)
    return rows


@pytest.mark.parametrize("name, change, seq, reason", [
    ("edit", lambda rows: _set(rows, 3, user="mallory"), 3, "record content does not match its hash"),
    ("delete", lambda rows: rows[:2] + rows[3:], 4, "the previous record is missing"),
    ("insert", lambda rows: rows[:3] + [dict(rows[2], run_id="forged")] + rows[3:], 3,
     "record content does not match its hash"),
    ("reorder", lambda rows: _set(_set(rows, 2, seq=3), 3, seq=2), 2, "record content does not match its hash"),
    ("replay", lambda rows: rows + [dict(rows[3])], 4, "sequence numbers are duplicated or do not start at 1"),
])
def test_every_tampering_is_detected(spark, trail, tmp_path, name, change, seq, reason):
    report = audit.verify(spark, forge(spark, trail, tmp_path, change))
    assert (report.first_broken_seq, report.reason) == (seq, reason), name


def test_a_rechained_or_truncated_trail_is_caught_by_an_earlier_anchor(spark, trail, tmp_path):
    anchor = audit.head(spark, str(trail))
    assert anchor.startswith("6:")
    rewritten = forge(spark, trail, tmp_path, lambda rows: rehash(_set(rows, 2, user="mallory")))
    assert audit.verify(spark, rewritten).intact  # the chain alone cannot tell
    report = audit.verify(spark, rewritten, [anchor])
    assert report.first_broken_seq == 6 and "rewritten" in report.reason
    truncated = forge(spark, trail, tmp_path / "2", lambda rows: rows[:-1])
    assert audit.verify(spark, truncated).intact
    assert "truncated" in audit.verify(spark, truncated, [anchor]).reason


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


def test_hand_edited_files_with_stale_checksums_are_reported_broken_not_a_crash(spark, trail, tmp_path):
    forged = forge(spark, trail, tmp_path, lambda rows: _set(rows, 3, user="mallory"), keep_checksums=True)
    report = audit.verify(spark, forged)
    assert not report.intact and report.reason, report
