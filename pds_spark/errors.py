"""Errors that a job turns into a documented exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes a scheduler can rely on (also listed by every job's --help)."""

    OK = 0
    FAILED = 1  # the job broke: see the log; nothing it wrote is half-done
    USAGE = 2  # bad arguments, settings or catalogue: fix the input and re-run
    THRESHOLD = 3  # the job ran, but a data-quality threshold was exceeded
    REFUSED = 4  # the caller is not authorised


class PdsError(Exception):
    """Base error: carries the exit code the job should end with."""

    exit_code = ExitCode.FAILED


class SettingsError(PdsError):
    """A setting is missing or invalid; the message names the key and the file."""

    exit_code = ExitCode.USAGE

    def __init__(self, source: str, key: str, problem: str):
        self.source, self.key, self.problem = source, key, problem
        super().__init__(f"{source}: setting '{key}': {problem}")


class CatalogError(PdsError):
    """A table schema cannot be understood; the message names the file and field."""

    exit_code = ExitCode.USAGE

    def __init__(self, source: str, problem: str, field: str | None = None):
        self.source, self.field, self.problem = source, field, problem
        where = f"{source}, field '{field}'" if field else source
        super().__init__(f"{where}: {problem}")
