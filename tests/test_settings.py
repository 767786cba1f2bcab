from pathlib import Path

import pytest

from pds_spark.errors import SettingsError
from pds_spark.session import read_spark_defaults
from pds_spark.settings import load_settings, parse_assignments
from tests.conftest import REPO

CONF = REPO / "conf" / "pds.toml"


def _copy(tmp_path: Path, extra: str) -> Path:
    text = (CONF.read_text().replace('"../', f'"{CONF.parent}/../')
            .replace('"spark-defaults.conf"', f'"{CONF.parent}/spark-defaults.conf"')
            .replace('"ingest.toml"', f'"{CONF.parent}/ingest.toml"')
            .replace('"quality.toml"', f'"{CONF.parent}/quality.toml"')
            .replace('"catalog.toml"', f'"{CONF.parent}/catalog.toml"')
            .replace('"pseudonymisation.toml"', f'"{CONF.parent}/pseudonymisation.toml"')
            .replace('"workspaces.toml"', f'"{CONF.parent}/workspaces.toml"')
            .replace('"mirrors.toml"', f'"{CONF.parent}/mirrors.toml"') + extra)
    path = tmp_path / "pds.toml"
    path.write_text(text)
    return path


def test_the_shipped_settings_are_valid():
    settings = load_settings(CONF)
    assert settings.paths.catalog.is_dir() and settings.ingest.max_quarantine_ratio == 0.01
    assert settings.spark.master == "local[*]"


@pytest.mark.parametrize("extra,key,problem", [
    ("[ingest]\nmax_quarantine_ratio = 2\n", "ingest.max_quarantine_ratio", "outside"),
    ("[ingest]\nmax_quarantine_ratio = 'lots'\n", "ingest.max_quarantine_ratio", "expected a number"),
    ("[ingest]\nmax_quarantine_ration = 0.1\n", "ingest.max_quarantine_ration", "unknown key"),
    ("[ingset]\n", "ingset", "unknown section"),
    ("[spark]\nmaster = 3\n", "spark.master", "expected a non-empty string"),
])
def test_a_bad_value_names_the_key_and_the_file(tmp_path, extra, key, problem):
    shipped = (CONF.read_text().split("[spark]")[0].replace('"../', f'"{CONF.parent}/../')
               .replace('"catalog.toml"', f'"{CONF.parent}/catalog.toml"'))
    path = tmp_path / "pds.toml"
    path.write_text(shipped + f'[spark]\njars = "x"\ndefaults = "{CONF.parent}/spark-defaults.conf"\n'
                    .replace("[spark]\n", "[spark]\n" + (extra.split("\n", 1)[1] if extra.startswith("[spark]") else ""))
                    + ("" if extra.startswith("[spark]") else extra))
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert err.value.key == key and str(path) in str(err.value) and problem in str(err.value)


def test_overrides_are_validated_and_named():
    with pytest.raises(SettingsError, match=r"--set: setting 'spark.log_level'.*not one of"):
        load_settings(CONF, {"spark.log_level": "LOUD"})
    with pytest.raises(SettingsError, match="catalog.*does not exist"):
        load_settings(CONF, {"paths.catalog": "/nowhere/at/all"})
    assert load_settings(CONF, parse_assignments(["ingest.max_quarantine_ratio=0.5"])).ingest.max_quarantine_ratio == 0.5
    with pytest.raises(SettingsError, match="KEY=VALUE"):
        parse_assignments(["no-equals-sign"])


def test_relative_paths_resolve_against_the_settings_file(tmp_path):
    path = _copy(tmp_path, "")
    settings = load_settings(path, {"paths.warehouse": "wh"})
    assert settings.paths.warehouse == (tmp_path / "wh").resolve()


def test_missing_or_invalid_files(tmp_path):
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[paths\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(bad)


def test_spark_defaults_are_read_and_a_bad_line_is_named(tmp_path):
    props = read_spark_defaults(REPO / "conf" / "spark-defaults.conf")
    assert props["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    bad = tmp_path / "spark-defaults.conf"
    bad.write_text("spark.ok 1\nshuffle.partitions 4\n")
    with pytest.raises(SettingsError, match=r"spark-defaults.conf:2.*shuffle.partitions"):
        read_spark_defaults(bad)
