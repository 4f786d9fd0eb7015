"""Starting the Streamlit dashboard as its own process (it reads only through the collector's API)."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from dashboard import signin

APP = Path(__file__).with_name("app.py")


def start_dashboard(api: str, host: str = "127.0.0.1", port: int = 8501) -> subprocess.Popen[bytes]:
    """Run `streamlit run dashboard/app.py` headless on host:port (through dashboard.serve, which imports the pages'
    libraries first), reading from the collector at `api`.

    Beyond loopback it refuses to start unless sign-in is configured (see dashboard.signin)."""
    check_sign_in(host)
    command = [
        sys.executable,
        "-m",
        "dashboard.serve",
        "run",
        str(APP),
        "--server.headless=true",
        f"--server.address={host}",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--global.developmentMode=false",
        "--client.toolbarMode=viewer",
    ]
    env = {**os.environ, "LLMLEDGER_API_URL": api.rstrip("/")}
    return subprocess.Popen(command, env=env)


def check_sign_in(host: str) -> None:
    """Exit with one line when a dashboard on `host` would need sign-in and none is configured."""
    signin.mode(host, oidc=signin.oidc_configured(signin.default_secrets_files()), password_hash=signin.password_hash())


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after `timeout` or at a second interrupt; returns once the process is gone."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            process.kill()
            process.wait()


@contextlib.contextmanager
def interrupted_by_sigterm() -> Iterator[None]:
    """SIGTERM (a process supervisor's stop) raises KeyboardInterrupt, as Ctrl-C does, so that `finally` blocks
    stop the processes started here: by default it ends Python at once and leaves them running."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _check_port(host: str, port: int) -> None:
    """Exit with one line when host:port is taken, rather than let Streamlit fail in its own process."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.create_server((host, port), family=family).close()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SystemExit(
                f"llmledger dashboard: port {port} on {host} (--port) is already in use: "
                "stop what listens there or pass another --port"
            ) from None
        raise SystemExit(f"llmledger dashboard: cannot listen on {host}:{port} (--port): {exc.strerror}") from None


def hash_password_main(args: object) -> int:
    """`llmledger hash-password`: read a password (twice, unechoed; or one line from a pipe) and print its
    hash for LLMLEDGER_DASHBOARD_PASSWORD_HASH."""
    import getpass

    from dashboard.password import hash_password

    if sys.stdin.isatty():
        given = getpass.getpass("Dashboard password: ")
        if getpass.getpass("Again: ") != given:
            print("The passwords differ.", file=sys.stderr)
            return 1
    else:
        given = sys.stdin.readline().rstrip("\n")
    if len(given) < 12:
        print("Use at least 12 characters.", file=sys.stderr)
        return 1
    print(hash_password(given))
    return 0


def main(args: object) -> int:
    """`llmledger dashboard --api URL --host H --port P`: run until SIGINT or SIGTERM, which stop Streamlit too."""
    _check_port(args.host, args.port)
    with interrupted_by_sigterm():
        process = start_dashboard(args.api, args.host, args.port)
        try:
            return process.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            stop(process)
