"""Driver-side reference data (code lists, names) as Spark frames.

`spark.createDataFrame` of a list puts the rows in the tasks of its first stage: a few
partitions of megabytes each (Spark warns above 1 MB a task). Here they are spread over as
many partitions as keep each task small.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

TASK_BYTES = 256 << 10  # the rows a task carries, at most (Spark warns from 1000 KiB)


def local_frame(spark: SparkSession, rows: Sequence[tuple], schema: T.StructType | str) -> DataFrame:
    """A frame of these rows, in partitions of at most about TASK_BYTES each."""
    size = len(pickle.dumps(rows[:1000], protocol=pickle.HIGHEST_PROTOCOL)) * len(rows) / max(1, min(len(rows), 1000))
    slices = max(1, math.ceil(size / TASK_BYTES))
    return spark.createDataFrame(spark.sparkContext.parallelize(list(rows), slices), schema)
