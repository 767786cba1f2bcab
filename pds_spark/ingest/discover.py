"""Find a delivery's files, map each to its catalogue table and period, measure it.

One streaming read per file on the driver gives its SHA-256, its line count (the
independent "rows read" of the accounting), whether its last line is complete,
and its header (a UTF-8 byte-order mark removed). A compressed file is decompressed
to its end, so a truncated or corrupt one is known (`unreadable`) before Spark starts.
Files are read in parallel threads; memory stays flat.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pds_spark.catalog import Catalogue
from pds_spark.catalog.model import Table

DATA_SUFFIXES = (".csv", ".txt", ".csv.gz", ".txt.gz")
CHUNK = 8 << 20
NO_PERIOD = "-"  # tables delivered whole (a partition value cannot be empty)


UNMAPPED = "_UNMAPPED"  # where files that map to no table go (their quarantine, their ledger rows)


@dataclass(frozen=True)
class DeliveryFile:
    path: Path
    relative: str  # inside the delivery, with '/' separators
    size: int
    checksum: str
    lines: int  # physical lines, header included (a last line without newline counts)
    complete: bool  # ends with a newline (or is empty)
    header: str | None  # first line, decoded
    table: Table | None
    period: str  # '2014', '201401', or NO_PERIOD for tables without a period in their name
    unreadable: str | None = None  # why the file cannot be read to its end (truncated gzip, ...)
    refused: str | None = None  # why its table cannot be loaded (its schema was refused)

    @property
    def target(self) -> str:
        """The table the file loads into, or UNMAPPED."""
        return self.table.name if self.table else UNMAPPED

    @property
    def compressed(self) -> bool:
        return self.path.name.lower().endswith(".gz")

    @property
    def data_lines(self) -> int:
        return max(self.lines - 1, 0)


BOM = b"\xef\xbb\xbf"


def _measure(path: Path) -> tuple[str, int, bool, bytes, str | None]:
    sha = hashlib.sha256()
    newlines, last, first, broken = 0, b"", b"", None
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if path.name.lower().endswith(".gz") else None
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
            data = chunk
            if inflate is not None and broken is None:
                try:
                    data = inflate.decompress(chunk)
                    while inflate.unused_data:  # concatenated gzip members
                        rest = inflate.unused_data
                        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                        data += inflate.decompress(rest)
                except zlib.error as e:
                    broken, data = f"unreadable: corrupt gzip ({e})", b""
            elif broken is not None:
                data = b""  # the rest is hashed, not counted
            if data:
                newlines += data.count(b"\n")
                last = data[-1:]
                if len(first) < 1 << 16 and b"\n" not in first:
                    first += data[: 1 << 16]
    if inflate is not None and broken is None and not inflate.eof and (newlines or last):
        broken = "unreadable: truncated gzip (the compressed stream ends before its end mark)"
    elif inflate is not None and broken is None and not inflate.eof:
        broken = "unreadable: not a complete gzip file"
    complete = last in (b"", b"\n")
    lines = newlines + (0 if complete else 1)
    header = first.split(b"\n", 1)[0].rstrip(b"\r")
    return sha.hexdigest(), lines, complete, header[len(BOM):] if header.startswith(BOM) else header, broken


def is_data_file(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and name.endswith(DATA_SUFFIXES)


def discover(source: Path, catalogue: Catalogue, tables: set[str] | None = None,
             threads: int = 4) -> list[DeliveryFile]:
    """Every data file under `source` (any depth, any folder names), measured and mapped."""
    paths = sorted(p for p in source.rglob("*") if is_data_file(p))

    def one(path: Path) -> DeliveryFile:
        checksum, lines, complete, header, broken = _measure(path)
        resolved = catalogue.resolve(path.name)
        table = resolved.table if resolved else None
        period = (resolved.period or NO_PERIOD) if resolved else NO_PERIOD
        refusal = None if resolved else catalogue.refusal(path.name)
        return DeliveryFile(path.resolve(), path.relative_to(source).as_posix(), path.stat().st_size, checksum,
                            lines, complete, header.decode("utf-8", errors="replace") if lines else None,
                            table, period, broken,
                            f"schema refused: {refusal.describe()}" if refusal else None)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        found = list(pool.map(one, paths))
    if tables:
        wanted = {t.upper() for t in tables}
        found = [f for f in found if f.table is None or f.table.name.upper() in wanted]
        found = [f for f in found if f.table is not None or (r := catalogue.refusal(f.path.name)) is None
                 or r.name.upper() in wanted]
    return found


def read_header(path: Path, encoding: str = "utf-8") -> str:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding=encoding, errors="replace") as fh:
        return fh.readline().rstrip("\r\n")


