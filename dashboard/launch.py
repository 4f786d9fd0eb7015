"""Starting the Streamlit dashboard as its own process (it reads only through the collector's API)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")


def start_dashboard(api: str, host: str = "127.0.0.1", port: int = 8501) -> subprocess.Popen[bytes]:
    """Run `streamlit run dashboard/app.py` headless on host:port, reading from the collector at `api`."""
    command = [
        sys.executable,
        "-m",
        "streamlit",
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


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def main(args: object) -> int:
    """`llmledger dashboard --api URL --host H --port P`: run until interrupted."""
    process = start_dashboard(args.api, args.host, args.port)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(process)
