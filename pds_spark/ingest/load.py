"""Load a delivery into Delta: one Spark job per table, every row loaded or quarantined.

For each table, the files to load are read as text (a large table's split as Spark
splits any file, its header being the first line of its first split; a small table's
files read whole and split at their newlines, so they share partitions), parsed under the catalogue,
counted per file while being written (`observe`), pseudonymised as the policy says,
and written with `replaceWhere` on their periods: a re-run or a re-delivered period
replaces exactly those periods, in one commit. Files with refused rows are read a
second time, numbered (a large table's files one partition each, a line's number being
its position in it), to write those rows, encrypted, to the table's quarantine. The ledger
records every file once its table is committed, so a killed run is finished by
running it again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.catalog import CsvDialect
from pds_spark.catalog.model import Table
from pds_spark.errors import ExitCode, PdsError
from pds_spark.ingest.discover import DeliveryFile
from pds_spark.ingest.lines import Layout, layout, parse_lines
from pds_spark.pseudo.apply import PROPERTY
from pds_spark.pseudo.hmac import SecretKey, chain_columns, pseudonym_sql, pseudonymise, secret_frame, with_keys
from pds_spark.pseudo.keystore import KeyStore
from pds_spark.pseudo.policy import Policy
from pds_spark.session import derived_session, runtime_settings
from pds_spark.sqltext import quoted, read_files, read_text, select_sql, sql_text
from pds_spark.warehouse import (Warehouse, commit_retrying, create_table, delta_conflicts, delta_exists,
                                 latest_version, new_table_defaults, table_properties, written_commit)

log = logging.getLogger("pds.ingest")

REPLACEMENT = "\ufffd"  # what decoding puts in place of an invalid byte
LINE_MASK = (1 << 33) - 1  # monotonically_increasing_id: partition << 33 | row in partition
LINEAGE = [T.StructField("_source_file", T.StringType(), False),
           T.StructField("_delivery_id", T.StringType(), False),
           T.StructField("_loaded_at", T.TimestampType(), False),
           T.StructField("_period", T.StringType(), False)]
QUARANTINE_SCHEMA = T.StructType([
    T.StructField("_source_file", T.StringType(), False), T.StructField("_line", T.LongType(), False),
    T.StructField("_period", T.StringType(), False), T.StructField("_delivery_id", T.StringType(), False),
    T.StructField("_loaded_at", T.TimestampType(), False),
    T.StructField("_reasons", T.ArrayType(T.StringType(), False), False),
    T.StructField("_raw_encrypted", T.BinaryType(), False)])
LEDGER_SCHEMA = T.StructType([T.StructField(n, t, True) for n, t in [
    ("delivery_id", T.StringType()), ("file", T.StringType()), ("checksum", T.StringType()),
    ("size", T.LongType()), ("table", T.StringType()), ("period", T.StringType()), ("status", T.StringType()),
    ("rows_read", T.LongType()), ("rows_loaded", T.LongType()), ("rows_quarantined", T.LongType()),
    ("delta_version", T.LongType()), ("quarantine_version", T.LongType()), ("reason", T.StringType()),
    ("loaded_at", T.TimestampType())]])
UNMAPPED = "_UNMAPPED"
LEDGER_KEY = ("delivery_id", "file", "checksum", "table")  # a file of a delivery, once
QUARANTINE_KEY = "quarantine"
SMALL_TABLE_BYTES = 64 << 20
WHOLE_FILE_BYTES = 8 << 20  # a small table's files are read whole when none is larger
# dates by the java.time patterns alone, whatever the caller's session says: EXCEPTION raises
# on a date only the old parser reads ('2020-1-5'), LEGACY takes it (lenient): both refused here
PARSE_CONF = {"spark.sql.legacy.timeParserPolicy": "CORRECTED"}
ONE_SPLIT_A_PARTITION = {"spark.sql.files.openCostInBytes": str(1 << 50)}  # splits never share a partition
READ_CONF = {"spark.sql.files.maxPartitionBytes": str(1 << 50), **ONE_SPLIT_A_PARTITION, **PARSE_CONF}
DECODED_PATH = "regexp_replace(url_decode(replace(_metadata.file_path, '+', '%2B')), '^file:', '')"  # a local path
# a table's partition value `_period` is never empty (NO_PERIOD for a table delivered whole): Delta
# would otherwise put a projection of every column before its NOT NULL checks, to turn '' into null
# (1 M rows of ER_PRS_F: 1.6 s of the tasks' 40 s)
WRITE_CONF = {"spark.databricks.delta.convertEmptyToNullForStringPartitionCol": "false"}
SMALL_TABLE_CONF = {**PARSE_CONF, **WRITE_CONF,
    "spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    # a table created small keeps row counts but no per-column min/max (one file a period:
    # nothing to skip), whose collection generates code in every task (-0.07 s a write);
    # `ALTER TABLE ... SET TBLPROPERTIES (delta.dataSkippingNumIndexedCols = 32)` if it grows
    "spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols": "0",
    # a new table's checksum listing its files: a Spark job over the empty state (-0.06 s a creation)
    "spark.databricks.delta.allFilesInCrc.enabled": "false",
    # no filters to infer from constraints (no joins but the key's one row): not computed over
    # every column of every step (1 s of 28 s of the JVM's time on 100 small tables)
    "spark.sql.constraintPropagation.enabled": "false",
    # one plan, no shuffle: adaptive execution would only plan the key frame's broadcast
    # as a stage of its own and plan the rest again (-0.03 s a table)
    "spark.sql.adaptive.enabled": "false"}
LEDGER_EVERY = (1000, 60.0)  # the ledger is written after this many files or seconds, and at the end


class AccountingError(PdsError):
    """Rows read differ from rows loaded + quarantined: nothing is recorded as done."""

    exit_code = ExitCode.FAILED


@dataclass
class FileOutcome:
    file: DeliveryFile
    status: str  # loaded | skipped | duplicate | empty | header_error | unmapped | unreadable
    loaded: int = 0
    quarantined: int = 0
    delta_version: int | None = None
    quarantine_version: int | None = None
    reason: str | None = None

    @property
    def read(self) -> int:
        """Data lines accounted for: none of a file that cannot be read to its end."""
        return 0 if self.status == "unreadable" else self.file.data_lines


@dataclass
class IngestResult:
    outcomes: list[FileOutcome] = field(default_factory=list)

    def total(self, attr: str, statuses=("loaded", "header_error", "unmapped")) -> int:
        return sum(getattr(o, attr) for o in self.outcomes if o.status in statuses)

    @property
    def quarantine_ratio(self) -> float:
        read = self.total("read")
        return self.total("quarantined") / read if read else 0.0


@dataclass(frozen=True)
class IngestOptions:
    delivery_id: str
    dialect: CsvDialect
    aliases: dict[str, tuple[str, ...]]
    parallel: int = 2


def escape_glob(path: str) -> str:
    """Hadoop globbing reads []{}*? as patterns: escape them so any file name works."""
    return "".join("\\" + c if c in "[]{}*?\\" else c for c in path)


# -- pure pieces ---------------------------------------------------------------------
def numbered_lines(spark: SparkSession, files: list[tuple[int, DeliveryFile]],
                   extra: dict[str, Callable[[DeliveryFile], object]] | None = None,
                   whole: bool = False, data_only: bool = False, numbered: bool = True) -> DataFrame:
    """The lines of these files with `_file_id` and `_line` (1-based), in one scan;
    `data_only`: without their first line (the header). `extra` adds one literal column
    per file.

    Line by line, READ_CONF must be in force (one partition per file: a line's number
    is its position in the partition). `whole` reads each file as one text split at
    its newlines instead, so many small files share a partition. Not `numbered`: no
    `_line`, and files split as Spark splits them (ONE_SPLIT_A_PARTITION must be in
    force: a file's first line is the first row of the split at its byte 0). Few steps:
    Spark analyses the whole plan again at each one.
    """
    paths = [escape_glob(str(f.path)) for _, f in files]
    if whole:  # one step, a row a file: its lines numbered, then a row a line (a last empty line is none)
        # SQL text, not Column calls: one JVM round trip per expression however many files
        file_id = f"try_element_at({_sql_map((sql_text(str(f.path)), str(i)) for i, f in files)}, {DECODED_PATH})"
        text = "CASE WHEN endswith(value, '\\n') THEN substr(value, 1, length(value) - 1) ELSE value END"
        # splitting decodes the text, which turns an invalid byte into U+FFFD: in a file that is not
        # valid UTF-8, a U+FFFD is made an invalid byte again, so that its line is refused as such
        # (the file is tested once, outside the lambda)
        line = "regexp_replace(text, '\\r$', '')"
        lines = [f"transform(split({text}, '\\n'), (text, i) -> named_struct("
                 f"'value', {v}, '_line', CAST(i + 1 AS BIGINT)))"
                 for v in (line, f"replace({line}, {sql_text(REPLACEMENT)}, CAST(X'FF' AS STRING))")]
        numbered_text = f"CASE WHEN is_valid_utf8(value) THEN {lines[0]} ELSE {lines[1]} END"
        kept = f"filter({numbered_text}, x -> x._line > 1)" if data_only else numbered_text
        return select_sql(read_text(spark, paths, wholetext=True),
                          [f"{file_id} AS _file_id", *_columns(files, extra, file_id), f"inline({kept})"])
    # a line finds its file by the path Spark's scans give it, not decoded a line (2 s of CPU a
    # million lines): those paths are listed once by a scan that reads no file (binaryFile, no content)
    scanned = dict(read_files(spark, paths).selectExpr(DECODED_PATH, "_metadata.file_path").collect())
    unlisted = [str(f.path) for _, f in files if str(f.path) not in scanned]
    if unlisted:
        raise PdsError(f"Spark's file listing does not give these files under their own path: {', '.join(unlisted)}")
    file_id = f"try_element_at({_sql_map((sql_text(scanned[str(f.path)]), str(i)) for i, f in files)}, " \
              "_metadata.file_path)"
    row = f"(monotonically_increasing_id() & {LINE_MASK})"  # the row's place in its partition, from 0
    # numbered: a line's number is its place; else a file's first line is the first row of its split at byte 0
    order, header = (f"{row} + 1 AS _line", "_line = 1") if numbered else \
        (f"_metadata.file_block_start = 0 AND {row} = 0 AS _first", "_first")
    lines = read_text(spark, paths).selectExpr("value", f"{file_id} AS _file_id", order)
    if data_only:
        lines = lines.where(f"NOT ({header})")
    if not numbered:
        lines = lines.drop("_first")
    return select_sql(lines, ["*", *_columns(files, extra, "_file_id")]) if extra else lines


def _columns(files: list[tuple[int, DeliveryFile]], extra: dict[str, Callable[[DeliveryFile], object]] | None,
             file_id: str) -> list[str]:
    """One column per `extra`, its file's value: an array indexed by the file's id, not a map searched."""
    by_id = dict(files)

    def values(value_of: Callable[[DeliveryFile], object]) -> str:
        return ", ".join(_sql_value(value_of(by_id[i])) if i in by_id else "NULL" for i in range(max(by_id) + 1))

    return [f"try_element_at(array({values(value_of)}), {file_id} + 1) AS {name}"
            for name, value_of in (extra or {}).items()]


def _sql_value(value: object) -> str:
    if isinstance(value, datetime):
        return f"TIMESTAMP {sql_text(value.isoformat(sep=' '))}"
    return sql_text(value) if isinstance(value, str) else str(int(value))


def _sql_map(pairs) -> str:
    return "map(" + ", ".join(f"{k}, {v}" for k, v in pairs) + ")"


def _union(frames: list[DataFrame]) -> DataFrame:
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def target_schema(table: Table, identifiers: list[str]) -> T.StructType:
    """The catalogue's schema (key columns NOT NULL, pseudonyms as text) plus lineage."""
    fields = []
    for f in table.fields:
        dtype = T.StringType() if f.name in identifiers else f.spark_type
        fields.append(T.StructField(f.name, dtype, not (f.required or f.name in table.primary_key)))
    return T.StructType(fields + LINEAGE)


def _key_frame(spark: SparkSession, key: SecretKey) -> DataFrame:
    return secret_frame(spark, {"__pds_qkey": key._material})


def encrypted(df: DataFrame, column: str, key: SecretKey) -> DataFrame:
    """`column` (text) replaced by its AES-256-GCM encryption; the key is a joined column, not a literal."""
    keyed = df.crossJoin(F.broadcast(_key_frame(df.sparkSession, key)))
    return keyed.withColumn(column, F.aes_encrypt(F.col(column).cast("binary"), F.col("__pds_qkey"),
                                                  F.lit("GCM"))).drop("__pds_qkey")


def decrypted(df: DataFrame, key: SecretKey, column: str = "_raw_encrypted") -> DataFrame:
    """Quarantined lines in clear, for an authorised review (`_raw`)."""
    keyed = df.crossJoin(F.broadcast(_key_frame(df.sparkSession, key)))
    return keyed.withColumn("_raw", F.aes_decrypt(F.col(column), F.col("__pds_qkey"), F.lit("GCM"))
                            .cast("string")).drop("__pds_qkey", column)


# -- the loader ----------------------------------------------------------------------
class Loader:
    def __init__(self, spark: SparkSession, warehouse: Warehouse, policy: Policy, keys: KeyStore,
                 options: IngestOptions, progress: Callable[[str], None] = log.info):
        self.spark, self.warehouse, self.policy, self.keys, self.opt = spark, warehouse, policy, keys, options
        self.progress = progress
        self.loaded_at = datetime.now(timezone.utc).replace(microsecond=0)  # aware: the same instant in any TZ
        self._local = threading.local()
        self._sessions: dict[str, SparkSession] = {}
        self._defaults: dict[int, dict[str, str] | None] = {}  # id(session) -> its new_table_defaults
        # the loader's own sessions start from the caller's settings (a new session has only the
        # Spark defaults): large tables' splits are as large as the caller's
        self._caller_conf = runtime_settings(spark)  # before a run sets READ_CONF on it
        self._split_conf = {**PARSE_CONF, **ONE_SPLIT_A_PARTITION, **WRITE_CONF,
                            # the line's parse and its typed, checked columns in one projection: `from_csv`
                            # computed once a row (subexpressions) rather than its 120 fields copied into
                            # a row between two (1 M rows: 25.5 s -> 23.6 s, same JVM, median of 3)
                            "spark.sql.optimizer.collapseProjectAlwaysInline": "true"}
        self._lock = threading.Lock()

    @property
    def sp(self) -> SparkSession:
        """The session of the table being loaded by this thread."""
        return getattr(self._local, "spark", None) or self.spark

    @property
    def whole(self) -> bool:
        """Whether this thread's table reads its files whole (small files, packed in few partitions)."""
        return self.sp is self._sessions.get("whole")

    @property
    def numbering(self) -> SparkSession:
        """The session that reads this thread's table's lines numbered: its own when it reads its
        files whole, else the caller's, one partition a file (READ_CONF, in force during a run)."""
        return self.sp if self.whole else self.spark

    def _session_for(self, files: list[DeliveryFile]) -> SparkSession:
        """Small tables run interpreted (compiling a wide table's parser costs more than running
        it), read their files whole, and skip what only pays on large tables (SMALL_TABLE_CONF).
        Large ones read their good rows, which need no line number, split as Spark splits any
        file, in a session of their own: the caller's reads numbered lines, a file a partition."""
        small = sum(f.size for f in files) < SMALL_TABLE_BYTES and max(f.size for f in files) <= WHOLE_FILE_BYTES
        name, conf = ("whole", SMALL_TABLE_CONF) if small else ("split", self._split_conf)
        with self._lock:
            if name not in self._sessions:
                child = derived_session(self.spark, conf, self._caller_conf)
                self._defaults[id(child)] = new_table_defaults(child)
                self._sessions[name] = child
        return self._sessions[name]

    # ledger -------------------------------------------------------------------------
    def already_loaded(self, files: list[DeliveryFile]) -> set[tuple[str, ...]]:
        """(checksum, table) of files the ledger records as loaded, and (checksum, table, file)
        of every file it records (empty and duplicate ones too), among these files."""
        if not files or not delta_exists(self.spark, self.warehouse.ledger):
            return set()
        sums = sorted({f.checksum for f in files})
        rows = (self.spark.read.format("delta").load(self.warehouse.ledger).where(F.col("checksum").isin(*sums))
                .select("checksum", "table", "file", "status").distinct().collect())  # a few per file at most
        return ({(r.checksum, r.table) for r in rows if r.status in ("loaded", "header_error", "unmapped")}
                | {(r.checksum, r.table, r.file) for r in rows})

    def record(self, outcomes: list[FileOutcome], attempts: int = 20) -> None:
        """The outcomes in the ledger, one row a file of a delivery: merged on (delivery, file,
        checksum, table), so that concurrent runs of one delivery record each file once."""
        from delta.tables import DeltaTable

        rows = [(self.opt.delivery_id, o.file.relative, o.file.checksum, o.file.size,
                 o.file.table.name if o.file.table else UNMAPPED, o.file.period, o.status, o.read, o.loaded,
                 o.quarantined, o.delta_version, o.quarantine_version, o.reason, self.loaded_at)
                for o in outcomes if o.status != "skipped"]
        if not rows:
            return
        new, path = self.spark.createDataFrame(rows, LEDGER_SCHEMA), self.warehouse.ledger
        on = " AND ".join(f"l.{c} = n.{c}" for c in LEDGER_KEY)

        def attempt(exists: bool) -> bool:  # after a concurrent run's commit: merged again over it
            if not exists:
                new.write.format("delta").mode("errorifexists").save(path)
            else:
                (DeltaTable.forPath(self.spark, path).alias("l").merge(new.alias("n"), on)
                 .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
            return True

        commit_retrying(self.spark, path, attempt, "ledger", attempts)

    # the run ------------------------------------------------------------------------
    def run(self, files: list[DeliveryFile], reload: bool = False) -> IngestResult:
        result = IngestResult()
        done = set() if reload else self.already_loaded(files)
        by_table: dict[str, list[DeliveryFile]] = defaultdict(list)
        seen: dict[str, DeliveryFile] = {}
        unreadable: list[DeliveryFile] = []
        for f in files:
            if f.size == 0 or f.lines == 0 or f.checksum in seen or f.unreadable:
                if (f.checksum, f.table.name if f.table else UNMAPPED, f.relative) in done:
                    result.outcomes.append(FileOutcome(f, "skipped", reason="already recorded"))
                    continue
            if f.unreadable and f.size > 0:
                unreadable.append(f)
            elif f.size == 0 or f.lines == 0:
                result.outcomes.append(FileOutcome(f, "empty", reason="empty file"))
            elif f.checksum in seen:
                result.outcomes.append(FileOutcome(f, "duplicate", reason=f"same content as {seen[f.checksum].relative}"))
            else:
                seen[f.checksum] = f
                by_table[f.table.name if f.table else UNMAPPED].append(f)
        jobs = []
        for name, group in sorted(by_table.items()):
            periods: dict[str, list[DeliveryFile]] = defaultdict(list)
            for f in group:
                periods[f.period].append(f)
            todo = []
            for period_files in periods.values():
                if all((f.checksum, name) in done for f in period_files):
                    result.outcomes += [FileOutcome(f, "skipped", reason="already loaded") for f in period_files]
                else:
                    todo += period_files
            if todo:
                jobs.append((name, todo))
        if unreadable:  # before the tables: their other files load as usual
            result.outcomes += self._quarantine_unreadable(unreadable)
        record_now = [o for o in result.outcomes if o.status in ("empty", "duplicate", "unreadable")]
        total, recorded = len(jobs), time.monotonic()
        pool = ThreadPoolExecutor(max_workers=max(1, self.opt.parallel))
        try:
            with _conf(self.spark, READ_CONF):
                futures = [pool.submit(self.load_table, name, todo) for name, todo in jobs]
                for i, future in enumerate(futures, start=1):
                    outcomes = future.result()
                    result.outcomes += outcomes
                    record_now += outcomes
                    read = sum(o.read for o in outcomes)
                    self.progress(f"[{i}/{total}] {jobs[i - 1][0]}: {len(outcomes)} file(s), {read:,} rows: "
                                  f"{sum(o.loaded for o in outcomes):,} loaded, "
                                  f"{sum(o.quarantined for o in outcomes):,} quarantined")
                    if len(record_now) >= LEDGER_EVERY[0] or time.monotonic() - recorded > LEDGER_EVERY[1]:
                        self.record(record_now)  # a table loaded but not yet recorded is loaded again by a re-run
                        record_now, recorded = [], time.monotonic()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # tables in flight finish; none start
            raise
        pool.shutdown()
        self.record(record_now)
        return result

    def load_table(self, name: str, files: list[DeliveryFile]) -> list[FileOutcome]:
        self._local.spark = self._session_for(files)
        try:
            return self._load_table(name, files)
        finally:
            self._local.spark = None

    def _load_table(self, name: str, files: list[DeliveryFile]) -> list[FileOutcome]:
        started = time.monotonic()
        if name == UNMAPPED:
            return self._quarantine_whole(None, files, None, {
                f.relative: f.refused or "file: maps to no catalogue table" for f in files})
        table = files[0].table
        fits, misfits = [], []
        for f in files:
            lay, problem = layout(table, _split_header(f.header or "", self.opt.dialect.separator), self.opt.aliases)
            (fits if lay else misfits).append((f, lay, problem))
        outcomes = self._quarantine_whole(table, [f for f, _, _ in misfits], None,
                                          {f.relative: f"header: {p}" for f, _, p in misfits}) if misfits else []
        if fits:
            outcomes += self._load(table, fits)
        log.debug("%s loaded in %.1f s", name, time.monotonic() - started)
        return outcomes

    def _delta_defaults(self) -> dict[str, str] | None:
        """`new_table_defaults` of this thread's session: read once for a session the loader
        makes, at each call in the caller's."""
        if id(self.sp) in self._defaults:
            return self._defaults[id(self.sp)]
        return new_table_defaults(self.sp)

    def _identifiers(self, table: Table) -> dict[str, tuple[str, ...]]:
        plan = self.policy.plan(table.name, table.column_names)
        return plan.pseudonyms

    def _ensure_table(self, table: Table,
                      identifiers: dict[str, tuple[str, ...]]) -> tuple[str, dict[str, int], bool]:
        """Create the table if needed; the key versions its pseudonyms are at; whether it was created."""
        path = self.warehouse.snds(table.name)
        columns = [c for cols in identifiers.values() for c in cols]
        if not delta_exists(self.sp, path):
            versions = {key: self.keys.ensure(key).versions for key in identifiers}
            schema, properties = target_schema(table, columns), {"pds.catalogue.table": table.name}
            for key, cols in identifiers.items():
                properties[f"{PROPERTY}.{key}.columns"] = ",".join(cols)
                properties[f"{PROPERTY}.{key}.version"] = str(versions[key])
            defaults = self._delta_defaults()
            if defaults is not None:  # its first commit written here (a fifth of a small table's load)
                created = create_table(self.sp, path, schema, ["_period"], {**defaults, **properties})
            else:  # defaults that may change the protocol: Delta's own CREATE TABLE reads them
                created = self._create_with_delta(path, schema, properties)
            if created:
                return path, versions, True  # its properties are ours: not read back (0.1 s a table)
            log.info("%s was created by another writer meanwhile: its properties are read", path)
        props = table_properties(self.sp, path)
        return path, {key: int(props.get(f"{PROPERTY}.{key}.version", "0")) for key in identifiers}, False

    def _create_with_delta(self, path: str, schema: T.StructType, properties: dict[str, str]) -> bool:
        """The table made by Delta's CREATE TABLE; False when another writer created it first."""
        from delta.tables import DeltaTable

        builder = DeltaTable.create(self.sp).location(path).addColumns(schema).partitionedBy("_period")
        for name, value in properties.items():
            builder = builder.property(name, value)
        try:
            builder.execute()
            return True
        except Exception:
            if not delta_exists(self.sp, path):
                raise
            return False

    def _parsed(self, table: Table, fits: list[tuple[DeliveryFile, Layout, str | None]],
                keys: list[SecretKey] | None = None, explain: bool = True,
                read: list[tuple[list[int], Observation]] | None = None) -> DataFrame:
        """The data lines of these files, parsed once per header layout (usually one).

        `keys`: the lines are joined with this key chain before parsing, while each row
        is still one text (joining 120 typed columns copies them all: +4.8 s against +1.1 s on 1 M rows).
        `explain`: with `_raw` and `_problems` (quarantine), else typed columns and `_bad`.
        `read`: receives, per layout, its files' ids and an observation of the lines read
        of each (`read`, an array in the order of the ids), counted before parsing.
        """
        by_layout: dict[tuple, list[tuple[int, DeliveryFile, Layout]]] = defaultdict(list)
        for file_id, (f, lay, _) in enumerate(fits):
            by_layout[(lay.width, tuple(sorted(lay.positions.items())))].append((file_id, f, lay))
        parsed = []
        # the good rows need no line number: a last line without end of line is refused for its
        # missing fields alone, whatever its number
        for group in by_layout.values():
            # the load's time too, as an array indexed by the file's id: a timestamp literal is
            # written into the generated code, which each load would then compile again
            extra = {"_source_file": lambda f: f.relative, "_period": lambda f: f.period,
                     **({"_truncated_at": lambda f: -1 if f.complete else f.lines} if explain else
                        {"_loaded_at": lambda f: self.loaded_at})}
            lines = numbered_lines(self.numbering if explain else self.sp,
                                   [(file_id, f) for file_id, f, _ in group], extra=extra,
                                   whole=self.whole, data_only=True, numbered=explain)
            if keys:
                lines = with_keys(lines, keys)
            if read is not None:  # per file as SQL text: a few JVM calls however many files
                ids = [file_id for file_id, _, _ in group]
                observation = Observation(f"ingest-read-{table.name}-{uuid.uuid4().hex}")
                lines = lines.observe(observation, F.expr(
                    "array(" + ", ".join(f"count(CASE WHEN _file_id = {i} THEN 1 END)" for i in ids) + ") AS read"))
                read.append((ids, observation))
            parsed.append(parse_lines(lines, table, self.opt.dialect, group[0][2],
                                      "_line = _truncated_at" if explain else None,
                                      keep=("_file_id", *(["_line"] if explain else ["_loaded_at"]), "_source_file",
                                            "_period",
                                            *(chain_columns(keys) if keys else ())),
                                      explain=explain))
        return _union(parsed)

    def _load(self, table: Table, fits: list[tuple[DeliveryFile, Layout, str | None]]) -> list[FileOutcome]:
        identifiers = self._identifiers(table)
        path, versions, created = self._ensure_table(table, identifiers)
        for key, cols in identifiers.items():
            if versions[key] < 1:
                raise PdsError(f"{path} holds identifier columns ({', '.join(cols)}) but records no version "
                               f"of key '{key}': refusing to write them in clear")
        chains = {key: self.keys.chain(key, until=versions[key]) for key in identifiers}
        early = next(iter(chains)) if len(chains) == 1 else None  # one key: joined before parsing
        empty = [f.relative for f, _, _ in fits if not f.period]
        if empty:  # WRITE_CONF: Delta's NOT NULL check of `_period` would not see an empty one
            raise PdsError(f"{table.name}: no period for {', '.join(empty)}")
        reads: list[tuple[list[int], Observation]] = []
        parsed = self._parsed(table, fits, chains[early] if early else None, explain=False, read=reads)
        # the written columns computed by the parse's own projection (one copy of each row, not two;
        # with WRITE_CONF, 1 M rows: the tasks' CPU 41.7 s -> 37.1 s): a refused row is the one whose
        # `_period` is null, counted per file while written (count(CASE): count_if adds a projection)
        joined = set(identifiers[early]) if early else set()
        good = select_sql(parsed, [
            *(pseudonym_sql(c, chains[early]) if c in joined else quoted(c) for c in table.column_names),
            "_source_file", f"{sql_text(self.opt.delivery_id)} AS _delivery_id",
            "_loaded_at", "CASE WHEN _bad THEN NULL ELSE _period END AS _period"])
        refused = ", ".join(f"count(CASE WHEN _period IS NULL AND _source_file = {sql_text(f.relative)} THEN 1 END)"
                            for f, _, _ in fits)
        observation = Observation(f"ingest-{table.name}-{uuid.uuid4().hex}")
        good = good.observe(observation, F.expr(f"array({refused}) AS bad")).where("_period IS NOT NULL")
        for key, cols in identifiers.items():
            if key != early:
                good = pseudonymise(good, cols, chains[key])
        periods = sorted({f.period for f, _, _ in fits})
        where = "_period IN (" + ", ".join(sql_text(p) for p in periods) + ")"
        version, metrics = _replace(good, path, where, empty=created)
        refused_counts = observation.get["bad"]
        read_counts = {i: n for ids, seen in reads for i, n in zip(ids, seen.get["read"])}
        written = int(metrics.get("numOutputRows", "0"))
        outcomes = []
        for i, (f, _, _) in enumerate(fits):
            read, refused = read_counts[i], refused_counts[i]
            if read != f.data_lines:
                raise AccountingError(f"{f.relative}: Spark read {read} data lines, the file has {f.data_lines}")
            outcomes.append(FileOutcome(f, "loaded", read - refused, refused, version))
        if written != sum(o.loaded for o in outcomes):
            raise AccountingError(f"{table.name}: Delta wrote {written} rows, {sum(o.loaded for o in outcomes)} "
                                  "were good")
        to_quarantine = [(i, fit) for i, fit in enumerate(fits) if outcomes[i].quarantined]
        version = self._write_quarantine(table.name, periods, self._parsed(table, [fit for _, fit in to_quarantine])
                                         .where("_bad") if to_quarantine else None,
                                         sum(o.quarantined for o in outcomes))
        for o in outcomes:
            o.quarantine_version = version
        return outcomes

    def _quarantine_whole(self, table: Table | None, files: list[DeliveryFile], reason: str | None,
                          reasons: dict[str, str] | None = None) -> list[FileOutcome]:
        """Every data line of these files to quarantine (unknown table, or a header that does not fit)."""
        if not files:
            return []
        name = table.name if table else UNMAPPED
        out = numbered_lines(self.numbering, list(enumerate(files)), extra={
            "_reason": lambda f: reason or reasons[f.relative], "_source_file": lambda f: f.relative,
            "_period": lambda f: f.period}, whole=self.whole, data_only=True)
        out = out.selectExpr("_source_file", "_line", "_period", "array(_reason) AS _problems", "value AS _raw")
        periods = sorted({f.period for f in files}) if table else None
        expected = sum(f.data_lines for f in files)
        version = self._write_quarantine(name, periods, out, expected, [f.relative for f in files])
        status = "unmapped" if table is None else "header_error"
        return [FileOutcome(f, status, 0, f.data_lines, None, version, reason or reasons[f.relative]) for f in files]

    def _quarantine_unreadable(self, files: list[DeliveryFile]) -> list[FileOutcome]:
        """Files that cannot be read to their end: one row each in the unmapped quarantine
        (line 0, the reason), none of their lines loaded; the ledger says why."""
        rows = [(f.relative, 0, f.period, [f.unreadable], "") for f in files]
        frame = self.spark.createDataFrame(rows, "_source_file string, _line long, _period string, "
                                                 "_problems array<string>, _raw string")
        version = self._write_quarantine(UNMAPPED, None, frame, len(files), [f.relative for f in files])
        return [FileOutcome(f, "unreadable", 0, 0, None, version,
                            f"{f.unreadable}; {f.data_lines:,} complete lines before the break: none loaded, "
                            "the file must be delivered again") for f in files]

    def _write_quarantine(self, name: str, periods: list[str] | None, bad: DataFrame | None, expected: int,
                          files: list[str] | None = None) -> int | None:
        """Replace this load's periods (or files) in the table's quarantine; checks the count."""
        from delta.tables import DeltaTable

        path = self.warehouse.quarantine(name)
        exists = delta_exists(self.sp, path)
        if bad is None and not exists:
            return None
        self.keys.ensure(QUARANTINE_KEY)
        key = self.keys.chain(QUARANTINE_KEY)[-1]
        if bad is None:
            bad = self.sp.createDataFrame([], "_source_file string, _line long, _period string, "
                                                 "_problems array<string>, _raw string")
        rows = bad.select("_source_file", F.col("_line").cast("long"), "_period",
                          F.lit(self.opt.delivery_id).alias("_delivery_id"),
                          F.lit(self.loaded_at).cast("timestamp").alias("_loaded_at"),
                          F.col("_problems").alias("_reasons"), "_raw")
        rows = encrypted(rows, "_raw", key).withColumnRenamed("_raw", "_raw_encrypted")
        if not exists:
            try:
                DeltaTable.createIfNotExists(self.sp).location(path).addColumns(QUARANTINE_SCHEMA) \
                    .property("pds.quarantine.key", QUARANTINE_KEY).execute()
            except Exception:  # noqa: BLE001 - created by a concurrent run first
                if not delta_exists(self.sp, path):
                    raise
        where = ("_period IN (" + ", ".join(sql_text(p) for p in periods) + ")" if periods is not None
                 else "_source_file IN (" + ", ".join(sql_text(p) for p in files) + ")")
        version, metrics = _replace(rows, path, where, empty=not exists)
        written = int(metrics.get("numOutputRows", "0"))
        if written != expected:
            raise AccountingError(f"{name}: quarantine received {written} rows, {expected} were refused")
        return version


def _replace(rows: DataFrame, path: str, where: str, empty: bool,
             attempts: int = 10) -> tuple[int, dict[str, str]]:
    """The rows matching `where` replaced by these, in one commit: its (version, operationMetrics),
    or the version before and no metrics when Delta had nothing to commit (no rows appended).
    A table just created (empty, at version 0) is appended to, the same commit without
    replaceWhere's search. A concurrent writer (another run of the same delivery) makes it
    write again with replaceWhere: after a conflict, or when the append was not the commit
    right after the creation; the rows are the same, so the periods end up holding them once."""
    spark = rows.sparkSession
    for attempt in range(attempts):
        token = f"pds-ingest {uuid.uuid4()}"
        before = 0 if empty else latest_version(spark, path)
        writer = rows.write.format("delta").option("userMetadata", token)
        try:
            if empty:
                writer.mode("append").save(path)
            else:
                writer.mode("overwrite").option("replaceWhere", where).save(path)
        except delta_conflicts():
            log.info("%s: a concurrent writer committed first; writing again", path)
            empty = False
            time.sleep(min(0.1 * (attempt + 1), 2.0))
            continue
        version, metrics = written_commit(spark, path, token, before)
        if empty and version != 1:
            log.info("%s: another writer committed since the creation; replacing its periods", path)
            empty = False
            continue
        return version, metrics
    raise PdsError(f"{path}: could not write after {attempts} attempts: too many concurrent writers")


def _split_header(header: str, sep: str) -> list[str]:
    return [h.strip().strip('"') for h in header.split(sep)]


class _conf:
    """Session settings for the duration of a block, restored afterwards."""

    def __init__(self, spark: SparkSession, values: dict[str, str]):
        self.spark, self.values, self.saved = spark, values, {}

    def __enter__(self):
        for k, v in self.values.items():
            self.saved[k] = self.spark.conf.get(k, None)
            self.spark.conf.set(k, v)

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                self.spark.conf.unset(k)
            else:
                self.spark.conf.set(k, v)


