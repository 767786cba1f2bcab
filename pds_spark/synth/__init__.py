"""The synthetic SNDS corpus generator: coherent core tables, any catalogue table,
files shaped like a delivery, ground truth and injected faults."""

from pds_spark.synth.config import FILE_FAULTS, ROW_FAULTS, CorpusConfig, PlantedCohort
from pds_spark.synth.corpus import generate_corpus, rows_by_table

__all__ = ["CorpusConfig", "FILE_FAULTS", "PlantedCohort", "ROW_FAULTS", "generate_corpus", "rows_by_table"]
