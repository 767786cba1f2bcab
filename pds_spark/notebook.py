"""A notebook's session on the platform: the settings and Spark session the jobs use, the
warehouse, and the events layer read the way a cohort reads it.

    from pds_spark.notebook import start
    wb = start()                      # conf/pds.toml (or $PDS_SETTINGS); $PDS_WAREHOUSE overrides the warehouse
    events = wb.events(spec)          # only the categories and years the spec needs
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from pyspark.sql import DataFrame, SparkSession

from pds_spark.catalog import Catalogue
from pds_spark.cohort.layer import CATEGORIES_ALL, data_end, read_events, read_patients
from pds_spark.cohort.spec import CohortSpec
from pds_spark.session import build_session
from pds_spark.settings import Settings, load_settings
from pds_spark.warehouse import Warehouse


@dataclass
class Workbench:
    settings: Settings
    spark: SparkSession
    warehouse: Warehouse

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue.from_settings(self.settings)

    def events(self, spec: CohortSpec | None = None, first: date = date(1900, 1, 1),
               last: date = date(2999, 12, 31)) -> DataFrame:
        """The events a spec reads, or every event between two days."""
        if spec is not None:
            return read_events(self.spark, self.warehouse, spec.categories_read, spec.reach)
        return read_events(self.spark, self.warehouse, CATEGORIES_ALL, (first, last))

    def patients(self) -> DataFrame:
        return read_patients(self.spark, self.warehouse)

    def data_end(self) -> date | None:
        return data_end(self.spark, self.warehouse)


def start(app: str = "notebook", warehouse: str | None = None) -> Workbench:
    """The platform's session for a notebook (the running one if there is one)."""
    where = warehouse or os.environ.get("PDS_WAREHOUSE")
    settings = load_settings(overrides={"paths.warehouse": where} if where else None,
                             origins={"paths.warehouse": "PDS_WAREHOUSE"} if where else None)
    spark = build_session(settings, app, {"spark.ui.showConsoleProgress": "false"})
    return Workbench(settings, spark, Warehouse(settings.paths.warehouse))
