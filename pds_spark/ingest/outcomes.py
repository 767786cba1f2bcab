"""What became of each delivered file, and the options of a load."""

from __future__ import annotations

from dataclasses import dataclass, field

from pds_spark.catalog import CsvDialect
from pds_spark.errors import ExitCode, PdsError
from pds_spark.ingest.discover import DeliveryFile

ACCOUNTED = ("loaded", "header_error", "unmapped")  # statuses whose lines are loaded or quarantined


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

    @property
    def table(self) -> str:
        return self.file.target


@dataclass
class IngestResult:
    outcomes: list[FileOutcome] = field(default_factory=list)

    def total(self, attr: str, statuses=ACCOUNTED) -> int:
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
