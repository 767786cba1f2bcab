"""The SNDS catalogue: Table Schema JSON -> Spark schemas, formats, keys, code lists."""

from pds_spark.catalog.catalogue import Catalogue, strip_file_suffixes
from pds_spark.catalog.formats import DIALECTS, CsvDialect, dialect
from pds_spark.catalog.model import Field, ForeignKey, Table
from pds_spark.catalog.reader import Resolved, parse_table, read_table

__all__ = ["Catalogue", "CsvDialect", "DIALECTS", "Field", "ForeignKey", "Resolved", "Table",
           "dialect", "parse_table", "read_table", "strip_file_suffixes"]
