"""One table's files into its Delta table and its quarantine, in one commit each.

The files' lines are parsed under the catalogue, counted per file while being written
(`observe`), pseudonymised as the policy says, and written with `replaceWhere` on their
periods: a re-run or a re-delivered period replaces exactly those periods. Files with
refused rows are read a second time, numbered, to write those rows, sealed, to the
table's quarantine.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import reduce

from pyspark.sql import DataFrame, Observation, SparkSession

from pds_spark.catalog.model import Table
from pds_spark.errors import PdsError
from pds_spark.ingest.discover import DeliveryFile
from pds_spark.ingest.lines import Layout, layout, parse_lines
from pds_spark.ingest.outcomes import AccountingError, FileOutcome, IngestOptions
from pds_spark.ingest.quarantine import Quarantine
from pds_spark.ingest.read import file_lines
from pds_spark.ingest.rows import marked_rows, read_per_file, refused_per_file, target_schema
from pds_spark.pseudo.apply import PROPERTY
from pds_spark.pseudo.hmac import SecretKey, chain_columns, pseudonym_sql, pseudonymise, with_keys
from pds_spark.pseudo.keystore import KeyStore
from pds_spark.pseudo.policy import Policy
from pds_spark.sqltext import in_list
from pds_spark.warehouse import Warehouse, create_table, delta_exists, replace_rows, table_properties

Fit = tuple[DeliveryFile, Layout]


@dataclass(frozen=True)
class Reading:
    """How a table's files are read: the session of its good rows, the one that numbers its
    refused lines, and whether files are read whole (then both are the same)."""

    good: SparkSession
    numbered: SparkSession
    whole: bool


class TableLoader:
    def __init__(self, warehouse: Warehouse, policy: Policy, keys: KeyStore, quarantine: Quarantine,
                 options: IngestOptions, loaded_at: datetime):
        self.warehouse, self.policy, self.keys, self.quarantine = warehouse, policy, keys, quarantine
        self.opt, self.loaded_at = options, loaded_at

    def load(self, table: Table, files: list[DeliveryFile], reading: Reading) -> list[FileOutcome]:
        """These files of `table`: those whose header fits loaded, the others quarantined whole."""
        fits, misfits, reasons = [], [], {}
        for f in files:
            header = [h.strip().strip('"') for h in (f.header or "").split(self.opt.dialect.separator)]
            lay, problem = layout(table, header, self.opt.aliases)
            if lay is not None:
                fits.append((f, lay))
            else:
                misfits.append(f)
                reasons[f.relative] = f"header: {problem}"
        outcomes = self.quarantine.whole_files(table, misfits, reasons, reading.numbered, reading.whole)
        return outcomes + (self._load(table, fits, reading) if fits else [])

    def _load(self, table: Table, fits: list[Fit], reading: Reading) -> list[FileOutcome]:
        if any(not f.period for f, _ in fits):  # `_period` is the table's partition: never empty
            raise PdsError(f"{table.name}: no period for {', '.join(f.relative for f, _ in fits if not f.period)}")
        identifiers = self.policy.plan(table.name, table.column_names).pseudonyms
        path, versions, created = self._ensure_table(table, identifiers, reading.good)
        chains = {key: self.keys.chain(key, until=versions[key]) for key in identifiers}
        early = next(iter(chains)) if len(chains) == 1 else None  # one key: joined before parsing
        reads: list[tuple[list[int], Observation]] = []
        parsed = self._parsed(table, fits, reading, chains[early] if early else None, reads)
        # the pseudonyms of the early key computed in the parse's own projection
        rows = marked_rows(parsed, table.column_names, self.opt.delivery_id,
                           {c: pseudonym_sql(c, chains[early]) for c in identifiers[early]} if early else {})
        observation = Observation(f"ingest-{table.name}-{uuid.uuid4().hex}")
        good = rows.observe(observation, refused_per_file([f.relative for f, _ in fits])).where("_period IS NOT NULL")
        for key, cols in identifiers.items():
            if key != early:
                good = pseudonymise(good, cols, chains[key])
        periods = sorted({f.period for f, _ in fits})
        version, metrics = replace_rows(good, path, in_list("_period", periods), empty=created)
        outcomes = _accounted(table, fits, reads, observation.get["refused"], metrics, version)
        refused = [fit for fit, o in zip(fits, outcomes) if o.quarantined]
        lines = self._parsed(table, refused, reading).where("_bad") if refused else None
        quarantined = self.quarantine.write(table.name, in_list("_period", periods), lines,
                                            sum(o.quarantined for o in outcomes), reading.numbered)
        for o in outcomes:
            o.quarantine_version = quarantined
        return outcomes

    def _ensure_table(self, table: Table, identifiers: dict[str, tuple[str, ...]],
                      spark: SparkSession) -> tuple[str, dict[str, int], bool]:
        """Create the table if needed; the key versions its pseudonyms are at; whether it was created."""
        path = self.warehouse.snds(table.name)
        created = False
        if not delta_exists(spark, path):
            versions = {key: self.keys.ensure(key).versions for key in identifiers}
            properties = {"pds.catalogue.table": table.name}
            for key, cols in identifiers.items():
                properties[f"{PROPERTY}.{key}.columns"] = ",".join(cols)
                properties[f"{PROPERTY}.{key}.version"] = str(versions[key])
            schema = target_schema(table, [c for cols in identifiers.values() for c in cols])
            created = create_table(spark, path, schema, ["_period"], properties)
        if not created:
            props = table_properties(spark, path)
            versions = {key: int(props.get(f"{PROPERTY}.{key}.version", "0")) for key in identifiers}
        for key, cols in identifiers.items():
            if versions[key] < 1:
                raise PdsError(f"{path} holds identifier columns ({', '.join(cols)}) but records no version "
                               f"of key '{key}': refusing to write them in clear")
        return path, versions, created

    def _parsed(self, table: Table, fits: list[Fit], reading: Reading, keys: list[SecretKey] | None = None,
                reads: list[tuple[list[int], Observation]] | None = None) -> DataFrame:
        """The data lines of these files, parsed once per header layout (usually one).

        `reads` given: the good rows (typed columns and `_bad`), each layout's files' lines counted
        per file into it, before parsing. Else the refused rows' view: numbered, `_raw` and
        `_problems`. `keys`: joined before parsing, while each row is still one text (joining 120
        typed columns copies them all).
        """
        by_layout: dict[tuple, list[tuple[int, DeliveryFile, Layout]]] = defaultdict(list)
        for file_id, (f, lay) in enumerate(fits):
            by_layout[(lay.width, tuple(sorted(lay.positions.items())))].append((file_id, f, lay))
        explain, parsed = reads is None, []
        for group in by_layout.values():
            # the load's time as an array indexed by the file's id: a timestamp literal would be
            # written into the generated code, compiled again at each load
            extra = {"_source_file": lambda f: f.relative, "_period": lambda f: f.period,
                     **({"_truncated_at": lambda f: -1 if f.complete else f.lines} if explain else
                        {"_loaded_at": lambda f: self.loaded_at})}
            lines = file_lines(reading.numbered if explain else reading.good,
                               [(file_id, f) for file_id, f, _ in group], extra=extra,
                               whole=reading.whole, data_only=True, numbered=explain)
            lines = with_keys(lines, keys) if keys else lines
            if reads is not None:
                ids = [file_id for file_id, _, _ in group]
                observation = Observation(f"ingest-read-{table.name}-{uuid.uuid4().hex}")
                lines = lines.observe(observation, read_per_file(ids))
                reads.append((ids, observation))
            keep = ("_file_id", "_line" if explain else "_loaded_at", "_source_file", "_period",
                    *(chain_columns(keys) if keys else ()))
            parsed.append(parse_lines(lines, table, self.opt.dialect, group[0][2],
                                      "_line = _truncated_at" if explain else None, keep=keep, explain=explain))
        return reduce(DataFrame.unionByName, parsed)


def _accounted(table: Table, fits: list[Fit], reads: list[tuple[list[int], Observation]], refused: list[int],
               metrics: dict[str, str], version: int) -> list[FileOutcome]:
    """Each file's outcome, once its lines read, refused and written add up."""
    read = {i: n for ids, seen in reads for i, n in zip(ids, seen.get["read"])}
    outcomes = []
    for i, (f, _) in enumerate(fits):
        if read[i] != f.data_lines:
            raise AccountingError(f"{f.relative}: Spark read {read[i]} data lines, the file has {f.data_lines}")
        outcomes.append(FileOutcome(f, "loaded", read[i] - refused[i], refused[i], version))
    written, good = int(metrics.get("numOutputRows", "0")), sum(o.loaded for o in outcomes)
    if written != good:
        raise AccountingError(f"{table.name}: Delta wrote {written} rows, {good} were good")
    return outcomes
