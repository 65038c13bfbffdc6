"""End-to-end tests: ``abonno host`` as a separate process, driven over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

from devhost.azurite import Azurite, free_port

BIN = Path(sys.executable).parent / "abonno"


@contextmanager
def running_host(azurite: Azurite, log_dir: Path, clock: str = "2026-03-02T08:00:00+00:00",
                 env: Mapping[str, str] | None = None) -> Iterator[str]:
    """``abonno host`` on a free port over ``azurite``, its test clock at ``clock``: its base
    URL once it answers. The host's output goes to a file: a pipe nobody reads fills up
    (64 KiB of warnings) and then blocks the host's next log line, and with it the tick
    that logged it."""
    port = free_port()
    log_file = (log_dir / "host.log").open("w+")
    process = subprocess.Popen([str(BIN), "host", "--port", str(port), "--storage", azurite.connection_string,
                                "--clock", clock], env=os.environ | {"ABONNO_LOG": "WARNING", **(env or {})},
                               stdout=log_file, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{url}/api/openapi.json", timeout=2).raise_for_status()
            break
        except requests.RequestException as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log_file.seek(0)
                raise RuntimeError(f"abonno host did not start: {log_file.read()}") from exc
            time.sleep(0.3)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log_file.close()
