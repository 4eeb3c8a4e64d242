"""A throwaway PostgreSQL server from the distribution's packages, on 127.0.0.1 only.

PostgreSQL refuses to run as root; when the tests run as root (as in CI) the server runs as the
`postgres` system user, from a temporary directory handed over to it.
"""

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

SUPERUSER = "dagster"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    username: str
    password: str

    def connect(self, db_name: str = "postgres") -> "psycopg2.extensions.connection":
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.username,
            password=self.password,
            dbname=db_name,
        )

    def create_database(self, template: str = "template1") -> str:
        """A new database, a copy of `template`."""
        name = f"dagster_{uuid.uuid4().hex[:12]}"
        connection = self.connect()
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with connection.cursor() as cursor:
                cursor.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
        finally:
            connection.close()
        return name


def server_binaries() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parents[1].name),
    )
    if not found:
        raise RuntimeError(
            "no PostgreSQL server under /usr/lib/postgresql: run scripts/system-packages.sh"
        )
    return Path(found[-1]).parent


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _hand_over(path: Path) -> None:
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(path, account.pw_uid, account.pw_gid)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(
        _as_server_user(command), cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{done.stdout}\n{done.stderr}")


def _start(binaries: Path, data: Path, root: Path) -> int:
    """Start the server on a free port; another process may take the port between the probe
    and the start, so try a few."""
    log = root / "server.log"
    for _ in range(3):
        port = _free_port()
        command = [str(binaries / "pg_ctl"), "--pgdata", str(data), "--log", str(log)]
        command += ["--options", f"-p {port}", "--wait", "--timeout", "60", "start"]
        done = subprocess.run(
            _as_server_user(command), cwd=root, capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            return port
    raise RuntimeError(f"PostgreSQL did not start:\n{log.read_text() if log.exists() else ''}")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Initialise a cluster, start it on a free loopback port with unix sockets off, yield how to
    reach it, stop it and remove its files on exit."""
    binaries = server_binaries()
    root = Path(tempfile.mkdtemp(prefix="cleanup-pg-"))
    _hand_over(root)
    data = root / "data"
    password = secrets.token_urlsafe(16)
    password_file = root / "password"
    password_file.write_text(password + "\n")
    _hand_over(password_file)
    started = False
    try:
        _run(
            [
                str(binaries / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                SUPERUSER,
                "--pwfile",
                str(password_file),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=root,
        )
        password_file.unlink()
        # Durability is worth nothing for a server that lives as long as a test session.
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        port = _start(binaries, data, root)
        started = True
        yield PostgresServer("127.0.0.1", port, SUPERUSER, password)
    finally:
        if started:
            _run(
                [str(binaries / "pg_ctl"), "--pgdata", str(data), "--mode", "fast", "stop"],
                cwd=root,
            )
        shutil.rmtree(root, ignore_errors=True)
