"""INSEE's first-name and surname frequencies: reference data, for conformity checks and for
the synthetic generator alike."""

from __future__ import annotations

import csv
import io
import zipfile
from functools import cache
from pathlib import Path


@cache
def insee_names(names_dir: Path) -> dict[str, list[tuple[str, int]]]:
    """First names by sex ('1' male, '2' female) and surnames, with their frequencies."""
    first: dict[str, dict[str, int]] = {"1": {}, "2": {}}
    with zipfile.ZipFile(names_dir / "insee_nat_2022.csv.zip") as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        with z.open(name) as raw:
            reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace"), delimiter=";")
            next(reader)
            for sex, given, _year, count in reader:
                if given.startswith("_") or sex not in first or not count.isdigit():
                    continue
                first[sex][given] = first[sex].get(given, 0) + int(count)
    surnames: dict[str, int] = {}
    with zipfile.ZipFile(names_dir / "insee_noms_2008.txt.zip") as z:
        name = next(n for n in z.namelist() if n.endswith(".txt"))
        with z.open(name) as raw:
            reader = csv.reader(io.TextIOWrapper(raw, encoding="latin-1"), delimiter="\t")
            next(reader)
            for row in reader:
                if row and row[0] and not row[0].startswith("AUTRES"):
                    surnames[row[0]] = sum(int(x) for x in row[1:] if x.isdigit())
    return {"first_1": sorted(first["1"].items()), "first_2": sorted(first["2"].items()),
            "surname": sorted(surnames.items())}
