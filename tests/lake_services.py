"""Throwaway local services for the lake tests, each on loopback and stopped by whoever started it: a PostgreSQL
cluster (the DuckLake catalog), HAProxy (in front of several collectors), moto's S3 (the data files) and a collector
as a subprocess (so a test can SIGKILL it)."""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from llmledger.testing.waiting import free_port, wait_until_ok

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


class _Service:
    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class _Daemon(_Service):
    """A service that is one foreground subprocess, its output in a log file in its own temporary folder."""

    name = "service"

    def __init__(self) -> None:
        self.port = 0
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        assert self.folder is not None, f"{self.name} not started"
        return self.folder / f"{self.name}.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _make_folder(self) -> Path:
        self.folder = Path(tempfile.mkdtemp(prefix=f"llmledger-{self.name}-"))
        return self.folder

    def _spawn(self, command: list[str], pass_fds: Sequence[int] = ()) -> None:
        self.folder = self.folder or self._make_folder()
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.folder, pass_fds=pass_fds
        )

    def _alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _failed(self, what: str) -> RuntimeError:
        tail = log_tail(self.log_path)
        self.stop()
        return RuntimeError(f"{self.name} {what}\n--- {self.name} log ---\n{tail}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


# --- PostgreSQL -----------------------------------------------------------------------------------------------------


def find_postgres_bindir() -> Path | None:
    """The folder with initdb, pg_ctl and postgres: pg_config's, else Debian's newest, else PATH's; None if absent."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        answer = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if answer.returncode == 0:
            candidates.append(Path(answer.stdout.strip()))
    debian = [Path(path) for path in glob.glob("/usr/lib/postgresql/*/bin")]
    candidates += sorted(
        debian, key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.name)], reverse=True
    )
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


class PostgresCluster(_Service):
    """A fresh cluster in a temporary folder: trust auth, superuser `postgres`, TCP on 127.0.0.1 only."""

    def __init__(self, bindir: Path | None = None, *, max_connections: int = 100) -> None:
        found = bindir or find_postgres_bindir()
        if found is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
        self.bindir = found
        self.max_connections = max_connections
        self.port = 0
        self.folder: Path | None = None

    @property
    def data(self) -> Path:
        assert self.folder is not None, "cluster not started"
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        assert self.folder is not None, "cluster not started"
        return self.folder / "server.log"

    def start(self) -> Self:
        # mkdtemp in the system temp folder, not pytest's tmp_path: the `postgres` user must be able to reach it.
        self.folder = Path(tempfile.mkdtemp(prefix="llmledger-pg-"))
        sockets = self.folder / "sockets"
        sockets.mkdir()
        try:
            self._hand_to_postgres_user(self.folder, sockets)
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
            settings = {
                "listen_addresses": f"'{LOOPBACK}'",
                "unix_socket_directories": f"'{sockets}'",
                "max_connections": str(self.max_connections),
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
            }
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
            self._start_on_a_free_port()
        except RuntimeError as exc:
            tail = log_tail(self.log_path)
            self.stop()
            raise RuntimeError(f"{exc}\n--- server log ---\n{tail}") from None
        return self

    def _start_on_a_free_port(self, attempts: int = 3) -> None:
        for attempt in range(attempts):
            self.port = free_port()
            options = ["-D", str(self.data), "-l", str(self.log_path), "-o", f"-p {self.port}", "-w", "-t", "60"]
            try:
                self._run("pg_ctl", *options, "start")
                return
            except RuntimeError:
                # Another process can take the free port before postgres binds it.
                if attempt == attempts - 1 or "Address already in use" not in log_tail(self.log_path, 10):
                    raise

    def dsn(self, dbname: str = "postgres") -> str:
        return f"dbname={dbname} host={LOOPBACK} port={self.port} user=postgres"

    def create_database(self, name: str) -> str:
        """Create database `name`; its libpq connection string."""
        import psycopg  # here: only the lake tests need the driver
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def stop(self) -> None:
        if self.folder is None:
            return
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:  # postgres refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        answer = subprocess.run(command, cwd=self.folder, capture_output=True, text=True, check=False)
        if check and answer.returncode != 0:
            raise RuntimeError(f"{program} failed ({answer.returncode}): {answer.stdout}{answer.stderr}")

    @staticmethod
    def _hand_to_postgres_user(*paths: Path) -> None:
        if os.geteuid() != 0:
            return
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(
                "running as root needs a `postgres` user (Debian's postgresql package adds it)"
            ) from None
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)


# --- HAProxy --------------------------------------------------------------------------------------------------------


# One log line per request (backend, timings, retries: "+1" = redispatched) to stderr, so into log_text().
HAPROXY_CONFIG = """\
global
    maxconn 4096
    log stderr format raw local0

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch

frontend lake
    bind {bind}
    default_backend collectors

backend collectors
    balance roundrobin
    option httpchk GET /healthz
{servers}
"""


def find_haproxy() -> str | None:
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


class HAProxy(_Daemon):
    """HTTP round-robin over `backends`, health-checked on /healthz; a refused connection is retried on another."""

    name = "haproxy"

    def __init__(self, backends: Sequence[tuple[str, int]], *, binary: str | None = None) -> None:
        super().__init__()
        found = binary or find_haproxy()
        if found is None:
            raise RuntimeError("haproxy not found: apt-get install haproxy")
        self.binary = found
        self.backends = list(backends)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        servers = "\n".join(
            f"    server b{index} {host}:{port} check inter 500ms fall 2 rise 1"
            for index, (host, port) in enumerate(self.backends)
        )
        # haproxy inherits an already listening socket (`bind fd@N`): no window in which another process can take a
        # "free" port, and nothing else can answer on it while we wait.
        with socket.create_server((LOOPBACK, 0)) as listener:
            self.port = listener.getsockname()[1]
            config = HAPROXY_CONFIG.format(bind=f"fd@{listener.fileno()}", servers=servers)
            config_path = self._make_folder() / "haproxy.cfg"
            config_path.write_text(config)
            self._spawn([self.binary, "-f", str(config_path), "-db"], pass_fds=[listener.fileno()])
        if not wait_until_ok(self.url, 10, alive=self._alive, any_status=True):
            raise self._failed("did not start")
        return self


# --- S3 (moto) ------------------------------------------------------------------------------------------------------


class MotoS3(_Daemon):
    """moto's S3 server with one bucket; `env` is what another process needs to reach it."""

    name = "moto"
    ACCESS_KEY = "testing"
    SECRET_KEY = "testing"
    REGION = "us-east-1"

    def __init__(self, bucket: str = "llmledger-lake") -> None:
        super().__init__()
        self.bucket = bucket

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
            "AWS_REGION": self.REGION,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def start(self) -> Self:
        self.port = free_port()
        self._spawn([sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)])
        if not wait_until_ok(self.endpoint_url, 30, alive=self._alive):
            raise self._failed("did not start")
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def client(self) -> Any:
        import boto3  # here: only the lake tests need it, and it is slow to import
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.ACCESS_KEY,
            aws_secret_access_key=self.SECRET_KEY,
            region_name=self.REGION,
            config=Config(s3={"addressing_style": "path"}),
        )

    def list_keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


# --- the collector --------------------------------------------------------------------------------------------------


def _option(args: Sequence[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


class CollectorProcess:
    """`llmledger collector ARGS` as a subprocess, healthy on return. Without `--port` it gets a free one; without
    `--grpc-port`, none (-1). Its output is appended to `log_path`, so restarts on one log keep the history."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        args = list(args)
        if _option(args, "--port") is None:
            args += ["--port", str(free_port())]
        if _option(args, "--grpc-port") is None:
            args += ["--grpc-port", "-1"]
        self.args = args
        self.port = int(_option(args, "--port") or 0)
        self.log_path = log_path
        self._log: IO[bytes] | None = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llmledger_cli", "collector", *args],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if not wait_until_ok(f"{self.url}/healthz", timeout, alive=lambda: self.process.poll() is None):
            died = self.process.poll() is not None
            self.kill()
            state = f"exited with {self.process.returncode}" if died else f"not healthy after {timeout:g} s"
            raise RuntimeError(f"collector {state}\n--- collector log ---\n{log_tail(log_path)}")

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs."""
        self.process.send_signal(signal.SIGKILL)
        return self._wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the graceful shutdown; SIGKILL and raise if it takes longer than `timeout`."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self._wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"collector ignored SIGTERM for {timeout:g} s\n{log_tail(self.log_path)}") from None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.process.poll() is None:
            self.terminate()
        elif self._log is not None:
            self._wait(0)
