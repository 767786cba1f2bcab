"""Date formats of the catalogue (strftime, as published) and of deliveries.

A catalogue format such as `%d%m%Y` or `%d%b%Y:%H:%M:%S` (SAS datetimes) becomes a
Spark datetime pattern; a format without day or year (`%m`) cannot be a Spark date
and is kept as text, checked against a regular expression built from the same format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# strftime token -> (Spark pattern, regex, date part it carries)
TOKENS = {
    "d": ("dd", r"(0[1-9]|[12][0-9]|3[01])", "day"),
    "m": ("MM", r"(0[1-9]|1[0-2])", "month"),
    "Y": ("yyyy", r"[0-9]{4}", "year"),
    "y": ("yy", r"[0-9]{2}", "year"),
    "b": ("MMM", r"[A-Za-z]{3}", "month"),
    "H": ("HH", r"([01][0-9]|2[0-3])", "hour"),
    "M": ("mm", r"[0-5][0-9]", "minute"),
    "S": ("ss", r"[0-5][0-9]", "second"),
}
DEFAULT_PATTERNS = {"date": "yyyy-MM-dd", "datetime": "yyyy-MM-dd'T'HH:mm:ss"}


class FormatError(ValueError):
    """A format string that cannot be translated without guessing."""


@dataclass(frozen=True)
class ParsedFormat:
    spark_pattern: str
    regex: str
    parts: frozenset[str]

    @property
    def is_full_date(self) -> bool:
        return {"day", "month", "year"} <= self.parts

    @property
    def has_time(self) -> bool:
        return "hour" in self.parts


def parse_strftime(fmt: str) -> ParsedFormat:
    """Translate a strftime format into a Spark pattern and a regex; refuse the unknown."""
    if fmt.startswith("fmt:"):
        fmt = fmt[4:]
    spark, regex, parts = [], [], set()
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%":
            if i + 1 >= len(fmt):
                raise FormatError(f"format {fmt!r} ends with a lone '%'")
            token = fmt[i + 1]
            if token == "%":
                spark.append("%")
                regex.append("%")
            elif token in TOKENS:
                pattern, rx, part = TOKENS[token]
                spark.append(pattern)
                regex.append(rx)
                parts.add(part)
            else:
                raise FormatError(f"format {fmt!r}: unsupported directive %{token}")
            i += 2
            continue
        spark.append(f"'{ch}'" if ch.isalpha() else ("''" if ch == "'" else ch))
        regex.append(re.escape(ch))
        i += 1
    if not parts:
        raise FormatError(f"format {fmt!r} has no date or time directive")
    return ParsedFormat("".join(spark), "^" + "".join(regex) + "$", frozenset(parts))


@dataclass(frozen=True)
class CsvDialect:
    """How a delivery writes its files: separator, quoting, and its own date format.

    `date_pattern` (a Spark pattern) replaces the ISO default for the catalogue's
    date fields declared with format `default`, as CNAM deliveries write `dd/MM/yyyy`.
    """

    name: str = "schema"
    separator: str = ","
    quote: str = '"'
    escape: str = '"'
    encoding: str = "UTF-8"
    date_pattern: str | None = None

    def date_pattern_for(self, field_type: str, declared_format: str, pattern: str | None) -> str | None:
        if self.date_pattern and field_type == "date" and declared_format in ("default", ""):
            return self.date_pattern
        return pattern


DIALECTS = {
    "schema": CsvDialect(),
    "cnam": CsvDialect(name="cnam", separator=";", date_pattern="dd/MM/yyyy"),
}


def dialect(name: str) -> CsvDialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r} (known: {', '.join(DIALECTS)})") from None
