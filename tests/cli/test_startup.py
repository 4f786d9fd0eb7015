"""Starting and stopping the commands as real processes: a mistake at start is one line on stderr and a non-zero exit
with nothing left running; SIGTERM stops everything a command started (the dashboard's Streamlit child too)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.store.backup import FORMAT, MANIFEST
from llmledger.testing.waiting import free_port, wait_until_ok

ROOT = Path(__file__).resolve().parents[2]
START_S = 60  # generous: Streamlit takes seconds to start on a slow machine
EXIT_S = 30


def llmledger(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmledger_cli", *args]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(llmledger(*args), cwd=ROOT, capture_output=True, text=True, timeout=EXIT_S * 2)


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a start-up mistake prints, after checking that it is all the command printed."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def streamlit_started_for(port: int) -> bool:
    """Whether a Streamlit for this port runs, listening yet or not."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"--server.port={port}".encode() in cmdline.read_bytes().split(b"\0"):
                return True
        except OSError:
            continue
    return False


class Started:
    """Processes a test started, and their children; whatever is left of them is killed at the end of the test."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[str]] = []
        self.children: list[int] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        # A handler here (not SIG_IGN, which a shell gives tests run in the background) leaves the command SIGINT's
        # default action, as in a terminal.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            process = subprocess.Popen(
                llmledger(*args), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
        finally:
            signal.signal(signal.SIGINT, previous)
        self.processes.append(process)
        return process

    def kill_what_is_left(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.children += children(process.pid)
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()
        for pid in self.children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def started() -> Iterator[Started]:
    processes = Started()
    yield processes
    processes.kill_what_is_left()


@pytest.fixture(scope="module")
def held_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A database file a running collector holds, and that collector's process id."""
    db = tmp_path_factory.mktemp("held") / "held.duckdb"
    port = free_port()
    holder = subprocess.Popen(
        llmledger("collector", "--db", str(db), "--port", str(port), "--grpc-port", "-1"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until_ok(f"http://127.0.0.1:{port}/healthz", START_S, alive=lambda: holder.poll() is None)
        yield db, holder.pid
    finally:
        holder.terminate()
        holder.wait(EXIT_S)


def test_a_second_collector_on_a_held_database_names_the_process_holding_it(held_db: tuple[Path, int]) -> None:
    db, holder = held_db
    line = one_line_failure(run("collector", "--db", str(db), "--port", str(free_port()), "--grpc-port", "-1"))
    assert line.startswith("llmledger collector: ")
    assert f"{db} is in use by process {holder}" in line
    assert "--db" in line


def test_up_on_a_held_database_starts_no_dashboard(held_db: tuple[Path, int]) -> None:
    db, holder = held_db
    dashboard_port = free_port()
    result = run("up", "--db", str(db), "--port", str(free_port()), "--grpc-port", "-1",
                 "--dashboard-port", str(dashboard_port))  # fmt: skip
    assert f"in use by process {holder}" in one_line_failure(result)
    assert not streamlit_started_for(dashboard_port)
    assert not listening(dashboard_port)


def test_up_beyond_loopback_without_sign_in_opens_nothing(tmp_path: Path) -> None:
    env = {**os.environ, **{f"LLMLEDGER_{kind}_TOKEN": f"{kind.lower()}-token" for kind in ("INGEST", "READ", "ADMIN")}}
    env.pop("LLMLEDGER_DASHBOARD_PASSWORD_HASH", None)
    command = llmledger("up", "--db", str(tmp_path / "x.duckdb"), "--host", "0.0.0.0", "--port", str(free_port()),
                        "--grpc-port", "-1", "--dashboard-port", str(free_port()))  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=EXIT_S * 2)
    assert "sign-in" in one_line_failure(result).lower()
    assert list(tmp_path.iterdir()) == []  # no database opened, migrated and left behind


def test_a_database_in_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "no" / "such"
    line = one_line_failure(run("collector", "--db", str(folder / "x.duckdb"), "--port", str(free_port())))
    assert line == f"llmledger collector: the folder {folder} of --db does not exist; create it or pass another --db"
    assert not folder.exists()


def test_restore_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / MANIFEST).write_text(json.dumps({"format": FORMAT, "rows": {}}))
    folder = tmp_path / "missing"
    line = one_line_failure(run("restore", "--db", str(folder / "r.duckdb"), "--from", str(backup)))
    assert line == f"llmledger restore: the folder {folder} of --db does not exist; create it or pass another --db"
    assert not folder.exists()

    existing = tmp_path / "existing.duckdb"
    existing.write_bytes(b"kept")
    line = one_line_failure(run("restore", "--db", str(existing), "--from", str(backup)))
    assert "never overwrites" in line
    assert existing.read_bytes() == b"kept"


@pytest.mark.parametrize("flag", ["--port", "--grpc-port", "--dashboard-port"])
def test_a_taken_port_is_one_line_naming_it(tmp_path: Path, flag: str) -> None:
    ports = {"--port": free_port(), "--grpc-port": free_port(), "--dashboard-port": free_port()}
    with socket.create_server(("127.0.0.1", 0)) as taken:
        ports[flag] = taken.getsockname()[1]
        args = [part for name, port in ports.items() for part in (name, str(port))]
        line = one_line_failure(run("up", "--db", str(tmp_path / "x.duckdb"), *args))
    assert line.startswith(f"llmledger collector: port {ports[flag]} on 127.0.0.1 ({flag}) is already in use")
    assert line.endswith(f"pass another {flag}")
    assert not (tmp_path / "x.duckdb").exists()  # refused before opening anything
    assert not streamlit_started_for(ports["--dashboard-port"])


def test_the_dashboard_on_a_taken_port_is_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        line = one_line_failure(run("dashboard", "--port", str(port)))
    assert line.startswith(f"llmledger dashboard: port {port} on 127.0.0.1 (--port) is already in use")


def stop_with(signum: signal.Signals, started: Started, process: subprocess.Popen[str], dashboard_port: int) -> None:
    """Signal `process` once its dashboard answers; it must exit 0 with its Streamlit child gone."""
    url = f"http://127.0.0.1:{dashboard_port}/_stcore/health"
    assert wait_until_ok(url, START_S, interval=0.2, alive=lambda: process.poll() is None), "the dashboard didn't start"
    streamlit = children(process.pid)
    started.children += streamlit
    assert streamlit, "no Streamlit child"
    process.send_signal(signum)  # to the command alone, as a supervisor does (Ctrl-C reaches Streamlit itself too)
    _, stderr = process.communicate(timeout=EXIT_S)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert not [pid for pid in streamlit if running(pid)]
    assert not listening(dashboard_port)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_dashboards_streamlit(started: Started, signum: signal.Signals) -> None:
    port = free_port()
    dashboard = started.start("dashboard", "--port", str(port), "--api", f"http://127.0.0.1:{free_port()}")
    stop_with(signum, started, dashboard, port)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_up_and_its_dashboard(tmp_path: Path, started: Started, signum: signal.Signals) -> None:
    port = free_port()
    up = started.start("up", "--db", str(tmp_path / "up.duckdb"), "--port", str(free_port()), "--grpc-port", "-1",
                       "--dashboard-port", str(port))  # fmt: skip
    stop_with(signum, started, up, port)
    assert not (tmp_path / "up.duckdb.wal").exists()  # the collector closed its database too
