"""pds-spark: the SNDS data platform on Spark and Delta Lake."""

__version__ = "0.1.0"
