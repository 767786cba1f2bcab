import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.catalog import Catalogue, dialect, parse_table, read_table
from pds_spark.catalog.formats import parse_strftime
from pds_spark.errors import CatalogError
from tests.conftest import SNDS


def test_every_published_schema_loads_into_a_spark_schema(spark, catalogue):
    files = sorted((SNDS / "schemas").rglob("*.json"))  # and IR_PHA_R, a referential (conf/catalog.toml)
    assert len(files) == 147 and len(catalogue) == 148
    for table in catalogue.tables.values():
        assert spark.createDataFrame([], table.spark_schema).columns == table.column_names


def test_published_files_have_the_catalogue_columns(catalogue):
    # the 10-row synthetic files: every header column is a catalogue field, but one
    # (ER_DCT_F.DCT_FOR_AMO is in the published file and not in the published schema)
    unknown = []
    for path in (SNDS / "synthetic").rglob("*.csv"):
        table = catalogue.table(path.stem)
        header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
        unknown += [f"{table.name}.{h}" for h in header if not table.has_field(h)]
    assert unknown == ["ER_DCT_F.DCT_FOR_AMO"]


def test_types_lengths_keys_and_code_lists(catalogue):
    prs = catalogue.table("ER_PRS_F")
    assert prs.primary_key == ("DCT_ORD_NUM", "FLX_DIS_DTD", "FLX_EMT_NUM", "FLX_EMT_ORD",
                               "FLX_EMT_TYP", "FLX_TRT_DTD", "ORG_CLE_NUM", "PRS_ORD_NUM",
                               "REM_TYP_AFF")
    fk = [f for f in prs.foreign_keys if f.table == "IR_BEN_R"][0]
    assert fk.fields == ("BEN_NIR_PSA", "BEN_RNG_GEM") == fk.ref_fields
    nir = prs.field("BEN_NIR_PSA")
    assert nir.spark_type == T.StringType() and nir.length == 17
    assert nir.oracle_column_type == "VARCHAR2(17 CHAR)"
    assert prs.field("BEN_AMA_COD").spark_type == T.IntegerType()
    assert catalogue.table("IR_BEN_R").missing_values == ("",)
    dgn = catalogue.table("T_MCOaaB").field("DGN_PAL")
    assert dgn.code_list == ("MS_CIM_V", "CIM_COD")
    assert catalogue.code_list(dgn.nomenclature).name == "MS_CIM_V.csv"
    amount = catalogue.table("MA_REM_FT").field("PRS_REM_MNT")
    # '13,2': 13 digits before the decimal point, 2 after (pds_spark.catalog.model.Field.number_digits)
    assert (amount.precision, amount.scale, amount.oracle_column_type) == (13, 2, "NUMBER(15,2)")


@pytest.mark.parametrize("table,field,spark_type,pattern,regex", [
    ("IR_BEN_R", "BEN_DCD_DTE", T.DateType(), "yyyy-MM-dd", None),
    ("T_MCOaaC", "ENT_DAT", T.DateType(), "ddMMyyyy", None),
    ("T_MCOaaC", "EXE_SOI_DTD", T.TimestampType(), "ddMMMyyyy:HH:mm:ss", None),
    ("IR_BEN_R", "BEN_NAI_MOI", T.StringType(), None, "^(0[1-9]|1[0-2])$"),
    ("IR_BEN_R", "BEN_DCD_AME", T.StringType(), None, "^[0-9]{4}(0[1-9]|1[0-2])$"),
    ("IR_BEN_R", "BEN_NAI_ANN", T.IntegerType(), None, "^[0-9]{4}$"),
])
def test_date_formats_become_spark_patterns(catalogue, table, field, spark_type, pattern, regex):
    f = catalogue.table(table).field(field)
    assert (f.spark_type, f.pattern, f.value_regex) == (spark_type, pattern, regex)


def test_patterns_parse_real_values_in_spark(spark, catalogue):
    mco = catalogue.table("T_MCOaaC")
    ben = catalogue.table("IR_BEN_R")
    cnam = dialect("cnam")
    dte = ben.field("BEN_DCD_DTE")
    row = spark.createDataFrame(
        [("28112015", "02Jan2007:22:12:17", "02JAN2007:22:12:17", "15/01/2006")], "a string, b string, c string, d string"
    ).select(
        F.to_date("a", mco.field("ENT_DAT").pattern).alias("ent"),
        F.to_timestamp("b", mco.field("EXE_SOI_DTD").pattern).alias("sas"),
        F.to_timestamp("c", mco.field("EXE_SOI_DTD").pattern).alias("sas_upper"),
        F.to_date("d", cnam.date_pattern_for(dte.type, dte.format, dte.pattern)).alias("cnam"),
    ).first()
    assert str(row.ent) == "2015-11-28" and str(row.cnam) == "2006-01-15"
    assert str(row.sas) == str(row.sas_upper) == "2007-01-02 22:12:17"
    # the CNAM dialect only replaces the ISO default, not a declared format
    ent = mco.field("ENT_DAT")
    assert cnam.date_pattern_for(ent.type, ent.format, ent.pattern) == "ddMMyyyy"


def test_strftime_translation_refuses_the_unknown():
    assert parse_strftime("%d/%m/%Y").spark_pattern == "dd/MM/yyyy"
    assert parse_strftime("%Y-%m-%dT%H:%M:%S").spark_pattern == "yyyy-MM-dd'T'HH:mm:ss"
    with pytest.raises(ValueError, match="%Q"):
        parse_strftime("%d%Q")


@pytest.mark.parametrize("delivered,table,period", [
    ("T_MCO14B", "T_MCOaaB", "2014"),
    ("t_mco14b.CSV", "T_MCOaaB", "2014"),
    ("T_MCO08MED.csv", "T_MCOaaMED", "2008"),
    ("T_MCO14FBSTC.csv.gz", "T_MCOaaFBSTC", "2014"),
    ("T_SSR19CSARR.csv", "T_SSRaaCSARR", "2019"),
    ("CT_IND_2019_GN.csv", "CT_IND_AAAA_GN", "2019"),
    ("ER_PRS_F_2014.CSV", "ER_PRS_F", "2014"),
    ("ER_PRS_F_201403.csv", "ER_PRS_F", "201403"),
    ("IR_BEN_R.csv", "IR_BEN_R", None),
])
def test_delivered_names_resolve_to_table_and_period(catalogue, delivered, table, period):
    resolved = catalogue.resolve(delivered)
    assert (resolved.table.name, resolved.period) == (table, period)


def test_year_templates_resolve_both_ways(catalogue):
    assert catalogue.table("T_MCOaaB").instance_name(2014) == "T_MCO14B"
    assert catalogue.table("CT_IND_AAAA_GN").instance_name(2019) == "CT_IND_2019_GN"
    assert catalogue.table("ER_PRS_F").instance_name(2014) == "ER_PRS_F_2014"
    assert catalogue.resolve("T_MCO14GV11").variant == "11"
    assert catalogue.resolve("XX_INCONNU_F_2019.csv") is None  # not in the catalogue: reported by ingest
    assert catalogue.resolve("IR_PHA_R.csv").table.source.endswith("nomenclatures/DREES/IR_PHA_R.json")
    with pytest.raises(CatalogError, match="did you mean ER_PRS_F"):
        catalogue.table("ER_PRS_G")


def _write(tmp_path: Path, name: str, doc) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize("doc,message,field", [
    ({"name": "X", "fields": [{"name": "A", "type": "money"}]}, "unknown type 'money'", "A"),
    ({"name": "X", "fields": [{"name": "A", "type": "number", "decimalChar": ","}]}, "decimalChar ','", "A"),
    ({"name": "X", "fields": [{"name": "A", "missingValues": ["NA"]}]}, "differ from the table's", "A"),
    ({"name": "X", "fields": [{"name": "A", "type": "integer", "constraints": {"pattern": "[0-9]+"}}]},
     "a pattern constraint applies to a text field", "A"),
    ({"name": "X", "fields": [{"name": "A", "constraints": {"pattern": "(["}}]}, "not a regular expression", "A"),
    ({"name": "X", "fields": [{"name": "A", "type": "time", "format": "%H"}]}, "not understood for type time",
     "A"),
    ({"name": "X", "fields": [{"name": "A", "length": "10.2"}]}, "length '10.2'", "A"),
    ({"name": "X", "fields": [{"name": "A", "type": "date", "format": "%d%q"}]}, "unsupported directive", "A"),
    ({"name": "X", "fields": [{"name": "A", "type": "string", "length": "huge"}]}, "length 'huge'", "A"),
    ({"name": "X", "fields": [{"name": "A", "type": "integer", "format": "%d"}]}, "not understood", "A"),
    ({"name": "X", "fields": [{"name": "A"}], "primaryKey": ["B"]}, "primaryKey names a field", "B"),
    ({"name": "X", "fields": [{"name": "A"}, {"name": "a"}]}, "declared twice", "a"),
    ({"name": "X", "fields": [{"name": "A", "constraints": {"foo": 1}}]}, "unknown constraint", "A"),
    ({"name": "X", "fields": [{"name": "A", "type_oracle": "clob"}]}, "unknown type_oracle", "A"),
    ({"fields": [{"name": "A"}]}, "no 'name'", None),
    ({"name": "X", "fields": []}, "no 'fields'", None),
    ("{not json", "not valid JSON", None),
])
def test_a_malformed_schema_is_refused_naming_file_and_field(tmp_path, doc, message, field):
    path = _write(tmp_path, "X", doc)
    with pytest.raises(CatalogError, match=message) as err:
        read_table(path)
    assert str(path) in str(err.value)
    assert err.value.field == field


def test_a_table_never_seen_before_works(tmp_path, spark):
    _write(tmp_path, "ZZ_NEW_F", {
        "name": "ZZ_NEW_F", "missingValues": ["", "NA"], "primaryKey": "ID",
        "fields": [
            {"name": "ID", "type": "integer", "length": "12"},
            {"name": "WHEN", "type": "date", "format": "%Y%m%d"},
            {"name": "AMOUNT", "type": "number", "length": "9,2"},
            {"name": "FLAG", "type": "boolean", "trueValues": ["O"], "falseValues": ["N"]},
        ]})
    _write(tmp_path, "T_NEWaaX", {"name": "T_NEWaaX", "fields": [{"name": "A"}]})
    catalogue = Catalogue.load(tmp_path)
    table = catalogue.table("ZZ_NEW_F")
    assert table.primary_key == ("ID",) and table.missing_values == ("", "NA")
    assert table.field("ID").spark_type == T.LongType()
    assert table.field("WHEN").pattern == "yyyyMMdd"
    assert table.field("FLAG").true_values == ("O",)
    assert catalogue.resolve("T_NEW21X.csv").period == "2021"
    assert catalogue.resolve("ZZ_NEW_F_2020.csv").table is table
    df = spark.createDataFrame([("20200131",)], "w string").select(F.to_date("w", table.field("WHEN").pattern))
    assert str(df.first()[0]) == "2020-01-31"


def test_two_files_declaring_one_table_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _write(tmp_path / "a", "X", {"name": "X", "fields": [{"name": "A"}]})
    _write(tmp_path / "b", "X", {"name": "X", "fields": [{"name": "A"}]})
    _write(tmp_path, "Y", {"name": "Y", "fields": [{"name": "A"}]})
    catalogue = Catalogue.load(tmp_path)
    assert list(catalogue.tables) == ["Y"] and [r.name for r in catalogue.refused] == ["X", "X"]
    with pytest.raises(CatalogError, match="is declared in .*a/X.json and .*b/X.json"):
        catalogue.table("X")


def test_parse_table_from_a_document():
    table = parse_table({"name": "T", "fields": [{"name": "A", "type": "year"}]}, "inline")
    assert table.field("a").value_regex == "^[0-9]{4}$"


# --- one table's unreadable schema does not stop the others --------------------------------
def test_a_broken_schema_is_refused_for_its_table_only(tmp_path):
    _write(tmp_path, "GOOD_F", {"name": "GOOD_F", "fields": [{"name": "A"}]})
    _write(tmp_path, "T_BADaaB", {"name": "T_BADaaB", "fields": [{"name": "A"}, {"name": "B", "type_oracle": "blob"}]})
    _write(tmp_path, "NOT_JSON", "{not json")
    catalogue = Catalogue.load(tmp_path)
    assert list(catalogue.tables) == ["GOOD_F"]
    refused = {r.name: r for r in catalogue.refused}
    assert set(refused) == {"NOT_JSON", "T_BADaaB"}
    assert refused["T_BADaaB"].field == "B" and "unknown type_oracle 'blob'" in refused["T_BADaaB"].reason
    assert refused["T_BADaaB"].source.endswith("T_BADaaB.json")
    assert "not valid JSON" in refused["NOT_JSON"].reason
    assert catalogue.resolve("T_BAD19B.csv") is None and catalogue.refusal("T_BAD19B.csv").name == "T_BADaaB"
    assert catalogue.refusal("NOT_JSON_2020.csv.gz").name == "NOT_JSON"
    assert catalogue.refusal("GOOD_F.csv") is None
    with pytest.raises(CatalogError, match="the schema of table T_BADaaB was refused: unknown type_oracle"):
        catalogue.table("T_BAD19B")
    assert len(catalogue.problems()) == 2


@pytest.mark.parametrize("field,spark_type,oracle,regex,good,bad", [
    ({"type": "date", "type_oracle": "datetime"}, T.DateType(), "DATE", None, None, None),
    ({"type": "datetime", "type_oracle": "TIMESTAMP"}, T.TimestampType(), "TIMESTAMP", None, None, None),
    ({"type": "string", "type_oracle": "VARCHAR2", "length": "(17)"}, T.StringType(), "VARCHAR2(17 CHAR)",
     None, None, None),
    ({"type": "string", "type_oracle": "varchar2", "length": "12 CHAR"}, T.StringType(), "VARCHAR2(12 CHAR)",
     None, None, None),
    ({"type": "number", "type_oracle": "NUMBER", "length": "(10, 2)"}, T.DoubleType(), "NUMBER(12,2)",
     None, None, None),
    ({"type": "integer", "type_oracle": "int", "length": "5"}, T.IntegerType(), "NUMBER(5)", None, None, None),
    ({"type": "time"}, T.StringType(), "VARCHAR2(4000 CHAR)", "time", "23:59:00", "24:00:00"),
    ({"type": "any"}, T.StringType(), "VARCHAR2(4000 CHAR)", None, None, None),
    ({"type": "object"}, T.StringType(), "VARCHAR2(4000 CHAR)", None, None, None),
    ({"type": "array"}, T.StringType(), "VARCHAR2(4000 CHAR)", None, None, None),
    ({"type": "duration"}, T.StringType(), "VARCHAR2(4000 CHAR)", None, None, None),
    ({"type": "geopoint"}, T.StringType(), "VARCHAR2(4000 CHAR)", None, None, None),
    ({"type": "geojson"}, T.StringType(), "VARCHAR2(4000 CHAR)", None, None, None),
    ({"type": "date", "format": "any"}, T.StringType(), "DATE", None, None, None),
    ({"type": "string", "format": "email"}, T.StringType(), "VARCHAR2(4000 CHAR)", None, None, None),
    ({"type": "string", "format": "uri"}, T.StringType(), "VARCHAR2(4000 CHAR)", None, None, None),
    ({"type": "string", "format": "binary"}, T.StringType(), "VARCHAR2(4000 CHAR)", None, None, None),
    ({"type": "string", "format": "uuid"}, T.StringType(), "VARCHAR2(4000 CHAR)", "uuid",
     "123e4567-e89b-12d3-a456-426614174000", "123e4567"),
    ({"type": "string", "constraints": {"pattern": "[A-Z][0-9]{2}"}}, T.StringType(), "VARCHAR2(4000 CHAR)",
     "pattern", "C50", "C50X"),
    ({"type": "string", "missingValues": [""]}, T.StringType(), "VARCHAR2(4000 CHAR)", None, None, None),
    ({"type": "number", "decimalChar": "."}, T.DoubleType(), "NUMBER", None, None, None),
])
def test_documented_or_obvious_values_are_understood(field, spark_type, oracle, regex, good, bad):
    import re

    table = parse_table({"name": "X", "fields": [{"name": "A", **field}]}, "inline")
    f = table.field("A")
    assert f.spark_type == spark_type and f.oracle_column_type == oracle
    if regex:
        assert re.match(f.value_regex, good) and not re.match(f.value_regex, bad)


def test_an_override_corrects_a_published_schema_and_is_listed(tmp_path):
    from pds_spark.catalog.reader import Overrides
    from pds_spark.errors import SettingsError

    schemas = tmp_path / "schemas"
    schemas.mkdir()
    _write(schemas, "T_BADaaB", {"name": "T_BADaaB", "fields": [{"name": "A"}, {"name": "B", "type_oracle": "blob"}]})
    conf = tmp_path / "catalog.toml"
    conf.write_text('[[field]]\ntable = "T_BADaaB"\nfield = "B"\nset = { type_oracle = "VARCHAR2", length = "8" }\n'
                    'reason = "published as a blob, holds 8-character codes"\n\n'
                    '[[field]]\ntable = "T_BADaaB"\nfield = "NO_SUCH"\nset = { type = "string" }\nreason = "typo"\n')
    catalogue = Catalogue.load(schemas, overrides=Overrides.read(conf))
    assert not catalogue.refused and catalogue.table("T_BAD20B").field("B").oracle_column_type == "VARCHAR2(8 CHAR)"
    assert catalogue.problems() == ["override matches no published table or field: T_BADaaB.NO_SUCH: "
                                    "type = 'string' (typo)"]
    conf.write_text('[[field]]\ntable = "T_BADaaB"\nfield = "B"\nset = { type = "string" }\n')
    with pytest.raises(SettingsError, match=r"field\[1\].*needs a reason"):
        Overrides.read(conf)


@pytest.mark.parametrize("entry, key", [
    ('schema = "DREES/NOT_THERE.json"\nreason = "r"', "referential"),
    ('schema = "DREES/IR_PHA_R.json"', "referential[1]"),
    ('schema = "../schemas/DCIR/ER_PRS_F.json"\nreason = "r"', "referential[1].schema"),
    ('schema = "DREES/IR_PHA_R.json"\nreason = "r"\ntable = "X"', "referential[1].table"),
])
def test_a_referential_loaded_as_a_table_is_checked(tmp_path, entry, key):
    from pds_spark.catalog.reader import Overrides
    from pds_spark.errors import SettingsError

    conf = tmp_path / "catalog.toml"
    conf.write_text(f"[[referential]]\n{entry}\n")
    with pytest.raises(SettingsError) as e:
        Catalogue.load(SNDS / "schemas", SNDS / "nomenclatures", Overrides.read(conf))
    assert e.value.key == key and e.value.source == str(conf)
