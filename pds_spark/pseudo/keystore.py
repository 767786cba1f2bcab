"""Pseudonymisation keys, encrypted at rest, with versions, rotation and destruction.

Each key name (`platform`, `project-<id>`, ...) is one JSON file under the store
folder holding its versions, each wrapped (AES-256-GCM) by a `KeyWrapper`. The
default wrapper derives its key-encryption key from a passphrase read from an
environment variable or a file; a KMS or HSM replaces it by any object with the
same `wrap`/`unwrap` methods (`python:module:factory` in the settings).

Version v of a key defines the pseudonym P_v(x) = HMAC(k_v, P_{v-1}(x)), P_0(x) = x,
so a rotation re-keys stored pseudonyms with one more HMAC, without the identifiers.
Destroying a key erases every wrapped version: its pseudonyms can never be
recomputed or linked again.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import fcntl
import importlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from pds_spark.errors import ExitCode, PdsError
from pds_spark.pseudo.hmac import KeyFrames, SecretKey

KEY_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
KEY_BYTES = 32
STORE_FILE = "store.json"
LOCK_FILE = ".lock"


class KeyStoreError(PdsError):
    """A key is missing, destroyed, or cannot be unlocked (never carries key material)."""

    exit_code = ExitCode.USAGE


class KeyWrapper(Protocol):
    """Encrypts key material at rest; `context` is authenticated, not secret."""

    def wrap(self, material: bytes, context: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, context: bytes) -> bytes: ...


class PassphraseWrapper:
    """AES-256-GCM under a key derived by scrypt from a passphrase and the store's salt."""

    def __init__(self, passphrase: bytes, salt: bytes):
        if len(passphrase) < 16:
            raise KeyStoreError("the key-store passphrase must be at least 16 bytes long")
        kek = Scrypt(salt=salt, length=32, n=2 ** 15, r=8, p=1).derive(passphrase)
        self._aead = AESGCM(kek)

    def __repr__(self) -> str:
        return "PassphraseWrapper(<redacted>)"

    def __reduce__(self):
        raise TypeError("a key wrapper is not serialisable")

    def wrap(self, material: bytes, context: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, material, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:12], blob[12:], context)
        except InvalidTag:
            raise KeyStoreError("cannot unlock the key store: wrong passphrase or altered key file") from None


def _passphrase(spec: str) -> bytes:
    kind, _, where = spec.partition(":")
    if kind == "env":
        value = os.environ.get(where)
        if not value:
            raise KeyStoreError(f"the key-store passphrase is not set: environment variable {where} is empty")
        return value.encode("utf-8")
    if kind == "file":
        path = Path(where)
        if not path.is_file():
            raise KeyStoreError(f"the key-store passphrase file does not exist: {path}")
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyStoreError(f"the key-store passphrase file is readable by others: {path} (chmod 600 it)")
        return path.read_bytes().strip()
    raise KeyStoreError(f"unknown passphrase source {kind!r} (use env:NAME, file:PATH or python:module:factory)")


def wrapper_from_spec(spec: str, salt: bytes) -> KeyWrapper:
    """`env:NAME`, `file:PATH` (a passphrase) or `python:module:factory` (a KMS client)."""
    if spec.startswith("python:"):
        module, _, factory = spec[len("python:"):].partition(":")
        try:
            return getattr(importlib.import_module(module), factory)()
        except (ImportError, AttributeError) as e:
            raise KeyStoreError(f"cannot load the key wrapper {spec!r}: {type(e).__name__}") from None
    return PassphraseWrapper(_passphrase(spec), salt)


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never its material."""

    name: str
    versions: int
    created: str
    rotated: str | None
    destroyed: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class KeyStore:
    """Keys by name, each with numbered versions; material only leaves as `SecretKey`s."""

    def __init__(self, folder: Path, unlock: str = "env:PDS_KEYSTORE_SECRET"):
        self.folder = Path(folder)
        self._unlock = unlock
        self._wrapper: KeyWrapper | None = None
        self.frames = KeyFrames()  # the Spark frames of the keys it gives out, dropped when one is destroyed

    def __repr__(self) -> str:
        return f"KeyStore({str(self.folder)!r})"

    @classmethod
    def from_settings(cls, settings) -> KeyStore:
        return cls(settings.pseudonymisation.keystore, settings.pseudonymisation.unlock)

    # -- files ---------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        """Exclusive over threads and processes: first use and changes are check-then-write."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _salt(self) -> bytes:
        meta = self.folder / STORE_FILE
        if not meta.exists():
            with self._locked():
                if not meta.exists():
                    _write_atomic(meta, {"format": 1, "created": _now(),
                                         "salt": base64.b64encode(secrets.token_bytes(16)).decode()})
        return base64.b64decode(json.loads(meta.read_text())["salt"])

    def _wrap(self) -> KeyWrapper:
        if self._wrapper is None:
            self._wrapper = wrapper_from_spec(self._unlock, self._salt())
        return self._wrapper

    def _path(self, name: str) -> Path:
        if not KEY_NAME.match(name):
            raise KeyStoreError(f"not a valid key name: {name!r} (lower-case letters, digits, '-')")
        return self.folder / f"{name}.json"

    def _read(self, name: str) -> dict:
        path = self._path(name)
        if not path.exists():
            raise KeyStoreError(f"no key named {name!r} in {self.folder}")
        return json.loads(path.read_text(encoding="utf-8"))

    @staticmethod
    def _context(name: str, version: int) -> bytes:
        return f"pds-key|{name}|{version}".encode()

    # -- lifecycle -----------------------------------------------------------
    def exists(self, name: str) -> bool:
        path = self._path(name)
        return path.exists() and not json.loads(path.read_text())["destroyed"]

    def create(self, name: str) -> KeyInfo:
        """A new key with one random version; refuses an existing or destroyed name."""
        path = self._path(name)
        wrapper = self._wrap()
        with self._locked():
            return self._create(name, path, wrapper)

    def _create(self, name: str, path: Path, wrapper: KeyWrapper) -> KeyInfo:
        if path.exists():
            state = "destroyed" if json.loads(path.read_text())["destroyed"] else "exists"
            raise KeyStoreError(f"key {name!r} already {state}; a name is never reused")
        entry = {"name": name, "created": _now(), "rotated": None, "destroyed": None, "versions": [{
            "version": 1, "created": _now(),
            "wrapped": base64.b64encode(wrapper.wrap(secrets.token_bytes(KEY_BYTES),
                                                     self._context(name, 1))).decode()}]}
        _write_atomic(path, entry)
        return self.info(name)

    def ensure(self, name: str) -> KeyInfo:
        """The key, created on first use (destroyed keys are never re-created)."""
        path = self._path(name)
        if path.exists():
            return self.info(name)
        wrapper = self._wrap()
        with self._locked():
            return self.info(name) if path.exists() else self._create(name, path, wrapper)

    def rotate(self, name: str) -> KeyInfo:
        """Add a version: pseudonyms at version v become HMAC(k_v+1, pseudonym)."""
        wrapper = self._wrap()
        with self._locked():
            entry = self._live(name)
            version = len(entry["versions"]) + 1
            entry["versions"].append({"version": version, "created": _now(), "wrapped": base64.b64encode(
                wrapper.wrap(secrets.token_bytes(KEY_BYTES), self._context(name, version))).decode()})
            entry["rotated"] = _now()
            _write_atomic(self._path(name), entry)
        return self.info(name)

    def destroy(self, name: str) -> KeyInfo:
        """Erase every version of the key for good (the name stays, as a tombstone)."""
        self.frames.forget()
        with self._locked():
            entry = self._read(name)
            entry.update(versions=[{"version": v["version"], "created": v["created"], "wrapped": None}
                                   for v in entry["versions"]], destroyed=_now())
            _write_atomic(self._path(name), entry)
        return self.info(name)

    def info(self, name: str) -> KeyInfo:
        entry = self._read(name)
        return KeyInfo(name, len(entry["versions"]), entry["created"], entry["rotated"], entry["destroyed"])

    def list(self) -> list[KeyInfo]:
        if not self.folder.is_dir():
            return []
        return [self.info(p.stem) for p in sorted(self.folder.glob("*.json")) if p.name != STORE_FILE]

    def _live(self, name: str) -> dict:
        entry = self._read(name)
        if entry["destroyed"]:
            raise KeyStoreError(f"key {name!r} was destroyed on {entry['destroyed']}; "
                                "its pseudonyms can no longer be computed")
        return entry

    def chain(self, name: str, since: int = 0, until: int | None = None) -> builtins.list[SecretKey]:
        """Versions since+1..until (default: the latest) in order of application."""
        entry = self._live(name)
        until = len(entry["versions"]) if until is None else until
        if not 0 <= since <= until <= len(entry["versions"]):
            raise KeyStoreError(f"key {name!r} has no versions {since + 1}..{until}")
        wrapper = self._wrap()
        return [SecretKey(wrapper.unwrap(base64.b64decode(v["wrapped"]), self._context(name, v["version"])),
                          key_id=f"{name}@{v['version']}", frames=self.frames)
                for v in entry["versions"][since:until]]
