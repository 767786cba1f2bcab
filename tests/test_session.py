import re

from chispa import assert_df_equality


def test_the_session_writes_and_reads_delta(spark, tmp_path):
    df = spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string")
    df.write.format("delta").save(str(tmp_path / "t"))
    back = spark.read.format("delta").load(str(tmp_path / "t"))
    assert_df_equality(back, df, ignore_row_order=True)
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"


def _processes_started(spark, action, tmp_path) -> list[str]:
    """The commands the driver's JVM started while `action` ran (a Flight Recorder recording),
    but for Spark's own `rm -rf` of the artifact folders of sessions other tests let go, which
    its cleaner thread may run at any moment."""
    jvm = spark.sparkContext._jvm
    recording = jvm.jdk.jfr.Recording()
    recording.enable("jdk.ProcessStart")
    recording.start()
    try:
        action()
    finally:
        recording.stop()
    path = jvm.java.io.File(str(tmp_path / "processes.jfr")).toPath()
    recording.dump(path)
    recording.close()
    events = jvm.jdk.jfr.consumer.RecordingFile.readAllEvents(path)
    jvm.java.nio.file.Files.delete(path)
    commands = [str(e.getString("command")) for e in events]
    return [c for c in commands if not re.fullmatch(r"rm -rf \S*/artifacts-[0-9a-f-]+/[0-9a-f-]+", c)]


def test_a_delta_commit_on_the_local_file_system_starts_no_process(spark, tmp_path):
    # Hadoop's own local file system starts chmod and readlink processes (about 45 a table
    # loaded); conf/spark-local.conf puts jvm/'s java.nio version in their place
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    uri = jvm.java.net.URI("file:///")
    assert jvm.org.apache.hadoop.fs.FileSystem.get(uri, conf).getClass().getName() == \
        "fr.pds.spark.hadoop.NioLocalFileSystem"
    df = spark.createDataFrame([(1, "a")], "id int, v string")
    path = str(tmp_path / "t")

    def create_and_append():
        df.write.format("delta").save(path)
        df.write.format("delta").mode("append").save(path)

    assert _processes_started(spark, create_and_append, tmp_path) == []
    assert spark.read.format("delta").load(path).count() == 2
    stock = jvm.org.apache.hadoop.fs.RawLocalFileSystem()  # the control: Hadoop's own spawns chmod
    stock.initialize(uri, conf)
    chmod = jvm.org.apache.hadoop.fs.permission.FsPermission.createImmutable(0o640)
    assert [c.split()[0] for c in _processes_started(
        spark, lambda: stock.setPermission(jvm.org.apache.hadoop.fs.Path(path), chmod), tmp_path)] == ["chmod"]


def test_the_local_file_system_sets_permissions_and_sees_links(spark, tmp_path):
    import os
    import stat

    import pytest
    from py4j.protocol import Py4JJavaError

    jvm = spark.sparkContext._jvm
    hadoop = jvm.org.apache.hadoop.fs
    fs = hadoop.FileSystem.get(jvm.java.net.URI("file:///"), spark.sparkContext._jsc.hadoopConfiguration())
    target = tmp_path / "file.txt"
    target.write_text("x")
    fs.setPermission(hadoop.Path(str(target)), hadoop.permission.FsPermission.createImmutable(0o640))
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    os.symlink(target, tmp_path / "link")
    assert fs.getFileLinkStatus(hadoop.Path(str(tmp_path / "link"))).isSymlink()
    plain = fs.getFileLinkStatus(hadoop.Path(str(target)))
    assert not plain.isSymlink() and plain.getLen() == 1
    with pytest.raises(Py4JJavaError, match="FileNotFoundException"):
        fs.getFileLinkStatus(hadoop.Path(str(tmp_path / "missing")))
