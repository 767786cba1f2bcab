"""Quality of loaded tables ("mise en qualité"): checks run in Spark, metrics in Delta, an HTML report."""

from pds_spark.quality.checks import Metric, check_table
from pds_spark.quality.run import run_quality

__all__ = ["Metric", "check_table", "run_quality"]
