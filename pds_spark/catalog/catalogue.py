"""The SNDS catalogue: every table schema of a folder, name resolution, code lists.

A schema that cannot be read is refused for its table only (`refused`): every other
table stays usable, and a delivered file of a refused table is named as such.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from pds_spark.catalog.model import Refusal, Table, is_templated, name_pattern
from pds_spark.catalog.reader import Overrides, Resolved, read_document, read_table
from pds_spark.errors import CatalogError, SettingsError

FILE_SUFFIXES = re.compile(r"(\.(csv|txt|dat))?(\.(gz|bz2|deflate|zst))?$", re.IGNORECASE)
PERIOD_SUFFIX = re.compile(r"^(?P<base>.+?)_(?P<year>(19|20)[0-9]{2})(?P<month>0[1-9]|1[0-2])?$")


def strip_file_suffixes(file_name: str) -> str:
    """ER_PRS_F_2014.csv.gz -> ER_PRS_F_2014."""
    return FILE_SUFFIXES.sub("", Path(file_name).name)


class Catalogue:
    """Tables by name; resolves delivered names (T_MCO14B) to tables and periods."""

    def __init__(self, tables: dict[str, Table], nomenclatures: Path | None = None,
                 refused: list[Refusal] | None = None, overrides: Overrides | None = None):
        self.tables = dict(sorted(tables.items()))
        self.refused = sorted(refused or [], key=lambda r: (r.name.upper(), r.source))
        self.overrides = overrides or Overrides()
        self._upper = {name.upper(): t for name, t in self.tables.items()}
        self._templated = [t for t in self.tables.values() if t.is_templated]
        self.nomenclature_dir = Path(nomenclatures) if nomenclatures else None
        self._code_lists: dict[str, Path] | None = None

    @classmethod
    def load(cls, schemas: str | Path, nomenclatures: str | Path | None = None,
             overrides: Overrides | None = None) -> Catalogue:
        """Every schema under `schemas`; one that cannot be read is refused for its table only."""
        root = Path(schemas)
        if not root.is_dir():
            raise CatalogError(str(root), "catalogue folder not found")
        overrides = overrides or Overrides()
        tables: dict[str, Table] = {}
        refused: dict[str, list[Refusal]] = {}
        paths = sorted(root.rglob("*.json"))
        for ref in overrides.referentials:
            path = Path(nomenclatures or "-") / ref.schema
            if not nomenclatures or not path.is_file():
                raise SettingsError(overrides.source, "referential",
                                    f"{ref.schema}: no such schema in the nomenclatures folder {nomenclatures}")
            paths.append(path)
        for path in paths:
            try:
                table = read_table(path, overrides)
            except CatalogError as e:
                name = _declared_name(path)
                refused.setdefault(name.upper(), []).append(Refusal(name, str(path), e.problem, e.field))
                continue
            other = tables.get(table.name.upper())
            if other:  # two schemas for one table: neither is chosen
                for t in (other, table):
                    refused.setdefault(t.name.upper(), []).append(Refusal(
                        t.name, t.source, f"table {t.name} is declared in {other.source} and {table.source}"))
                continue
            tables[table.name.upper()] = table
        for upper in refused:
            tables.pop(upper, None)  # a name refused once is refused whole
        if not paths:
            raise CatalogError(str(root), "no table schema (*.json) in the catalogue folder")
        return cls({t.name: t for t in tables.values()}, Path(nomenclatures) if nomenclatures else None,
                   [r for rs in refused.values() for r in rs], overrides)

    @classmethod
    def from_settings(cls, settings) -> Catalogue:
        return cls.load(settings.paths.catalog, settings.paths.nomenclatures,
                        Overrides.read(settings.paths.catalog_overrides))

    def refusal(self, name: str) -> Refusal | None:
        """The refusal of the table a delivered name (`T_MCO14B.csv`) or table name belongs to."""
        stem = strip_file_suffixes(name)
        base = PERIOD_SUFFIX.match(stem)
        for r in self.refused:
            if r.name.upper() == stem.upper() or (base and r.name.upper() == base.group("base").upper()):
                return r
            if is_templated(r.name) and name_pattern(r.name).fullmatch(stem):
                return r
        return None

    def __len__(self) -> int:
        return len(self.tables)

    def __contains__(self, name: str) -> bool:
        return name.upper() in self._upper

    def table(self, name: str) -> Table:
        """The table by its published name (case-insensitive), or a delivered name."""
        found = self._upper.get(name.upper())
        if found:
            return found
        resolved = self.resolve(name)
        if resolved:
            return resolved.table
        refusal = self.refusal(name)
        if refusal:
            raise CatalogError(refusal.source, f"the schema of table {refusal.name} was refused: {refusal.reason}",
                               refusal.field)
        close = difflib.get_close_matches(name.upper(), list(self._upper), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise CatalogError("catalogue", f"no table named {name!r}{hint}")

    def resolve(self, name: str) -> Resolved | None:
        """Map a delivered file or table name to (table, period); None if nothing matches.

        `ER_PRS_F_2014.csv` -> ER_PRS_F, 2014; `T_MCO14B` -> T_MCOaaB, 2014;
        `CT_IND_2019_GN` -> CT_IND_AAAA_GN, 2019. Two matches are an error, never a guess.
        """
        stem = strip_file_suffixes(name)
        exact = self._upper.get(stem.upper())
        if exact and not exact.is_templated:
            return Resolved(exact)
        matches = []
        for table in self._templated:
            m = table.name_regex.fullmatch(stem)
            if m:
                groups = m.groupdict()
                year = int(groups["year4"]) if groups.get("year4") else (
                    2000 + int(groups["year2"]) if groups.get("year2") else None)
                matches.append(Resolved(table, year=year, variant=groups.get("variant")))
        m = PERIOD_SUFFIX.match(stem)
        if m and m.group("base").upper() in self._upper:
            base = self._upper[m.group("base").upper()]
            month = m.group("month")
            matches.append(Resolved(base, year=int(m.group("year")), month=int(month) if month else None))
        if len(matches) > 1:
            names = ", ".join(r.table.name for r in matches)
            raise CatalogError(name, f"the name matches several tables: {names}")
        if not matches and exact:  # a template's own name (T_MCOaaB.csv): no period
            return Resolved(exact)
        return matches[0] if matches else None

    def check_in_spark(self, spark) -> int:
        """Have Spark accept every table's schema; returns the number of fields."""
        for table in self.tables.values():
            spark.createDataFrame([], table.spark_schema)
        return sum(len(t.fields) for t in self.tables.values())

    def problems(self) -> list[str]:
        """What makes `jobs/catalog.py check` fail: refused schemas, overrides that match nothing."""
        return ([f"refused {r.describe()}" for r in self.refused]
                + [f"override matches no published table or field: {o.describe()}" for o in self.overrides.unused()])

    def notes(self) -> list[str]:
        """Every field the reader had to settle (e.g. contradictory boolean values)."""
        return [f"{t.name}.{f.name}: {f.note}" for t in self.tables.values() for f in t.fields if f.note]

    def code_list(self, reference: str) -> Path | None:
        """Path of a code list file (`IR_GEO_V` or `IR_GEO_V:GEO_COM_COD`), if present."""
        if self.nomenclature_dir is None:
            return None
        if self._code_lists is None:
            self._code_lists = {p.stem.upper(): p for p in sorted(self.nomenclature_dir.rglob("*.csv"))}
        return self._code_lists.get(reference.partition(":")[0].upper())


def _declared_name(path: Path) -> str:
    """The table a schema file declares, as far as it can be read: its `name`, else the file's stem."""
    try:
        doc = read_document(path)
    except CatalogError:
        return path.stem
    name = doc.get("name") if isinstance(doc, dict) else None
    return name if isinstance(name, str) and name else path.stem
