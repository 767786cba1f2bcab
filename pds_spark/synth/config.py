"""What a generated corpus looks like: sizes, years, seed, planted truth, faults."""

from __future__ import annotations

from dataclasses import dataclass, field

# Kinds of injected faults: row-level ones are written into data lines, file-level
# ones are whole files. The manifest lists each with its file and line.
ROW_FAULTS = ("too_many_fields", "too_few_fields", "bad_number", "bad_date",
              "unescaped_quote", "invalid_utf8", "over_length")
FILE_FAULTS = ("truncated_last_line", "empty_file", "duplicate_file", "unknown_table")
# Faults that load and that the quality checks must find: each with the one finding it makes
QUALITY_FAULTS = ("duplicate_key", "orphan_key", "unknown_code")


@dataclass(frozen=True)
class PlantedCohort:
    """Patients with a diagnosis (PMSI main diagnosis) and a drug (DCIR) in a window."""

    diagnosis_prefix: str = "E11"  # ICD-10: type 2 diabetes
    drug_cip13: int = 3400930000017  # a fictional CIP13 code, outside the random draw
    drug_atc: str = "A10BX99"  # its ATC class in IR_PHA_R: no other drug has it
    rate: float = 0.02  # share of patients planted


@dataclass(frozen=True)
class CorpusConfig:
    patients: int = 2_000
    first_year: int = 2019
    years: int = 2
    seed: int = 1
    prestations_per_patient_year: float = 12.0
    stays_per_patient_year: float = 0.15
    dialect: str = "schema"  # 'schema' (',' + catalogue formats) or 'cnam' (';' + dd/MM/yyyy)
    compress: bool = False
    other_tables: bool = False  # also every other catalogue table, schema-driven
    rows_per_other_table: int = 50
    external_share: float = 0.05  # share of patients in the external research cohort
    external_decoys: float = 0.2  # external records of people not in the corpus, per match
    fault_rate: float = 0.0  # share of data lines with an injected fault (0 = none)
    quality_faults: bool = False  # one line of each QUALITY_FAULTS kind, with the finding it must make
    planted: PlantedCohort = field(default_factory=PlantedCohort)

    def __post_init__(self):
        checks = {
            "patients": self.patients >= 10,
            "years": 1 <= self.years <= 20,
            "first_year": 2000 <= self.first_year <= 2090,
            "prestations_per_patient_year": 0 < self.prestations_per_patient_year <= 500,
            "stays_per_patient_year": 0 < self.stays_per_patient_year <= 10,
            "dialect": self.dialect in ("schema", "cnam"),
            "external_share": 0 <= self.external_share <= 1,
            "fault_rate": 0 <= self.fault_rate <= 0.5,
            "rows_per_other_table": 1 <= self.rows_per_other_table <= 10_000_000,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid corpus setting(s): {', '.join(bad)}")
        # planted rows are numbered after the random ones, at most one per patient
        if self.prestation_rows + self.patients >= 10 ** 8:
            raise ValueError("too many prestations: DCT_ORD_NUM (8 digits in ER_CAM_F) would overflow")

    @property
    def year_list(self) -> list[int]:
        return list(range(self.first_year, self.first_year + self.years))

    @property
    def prestation_rows(self) -> int:
        return int(self.patients * self.years * self.prestations_per_patient_year)

    @property
    def stay_rows(self) -> int:
        return int(self.patients * self.years * self.stays_per_patient_year)

    @property
    def window_year(self) -> int:
        """The planted cohort's window: the middle year of the corpus."""
        return self.first_year + (self.years - 1) // 2
