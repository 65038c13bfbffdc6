"""Start Azurite (pinned in package.json) or find one already running.

Azurite is the real Table, Blob and Queue service for the local host and the tests.
If it cannot start, ``AzuriteError`` says why: nothing falls back to a fake.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Azurite's documented development account (the same key in every Azurite installation).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteError(RuntimeError):
    pass


@dataclass
class Ports:
    blob: int = 10000
    queue: int = 10001
    table: int = 10002

    def connection_string(self, host: str = "127.0.0.1") -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint=http://{host}:{self.blob}/{ACCOUNT};"
                f"QueueEndpoint=http://{host}:{self.queue}/{ACCOUNT};"
                f"TableEndpoint=http://{host}:{self.table}/{ACCOUNT};")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def executable() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if not found:
        raise AzuriteError("azurite is not installed: run scripts/setup.sh (npm ci)")
    return found


class Azurite:
    """A running Azurite: started here (and stopped by ``stop``) or found on ``ports``."""

    def __init__(self, ports: Ports, process: subprocess.Popen[bytes] | None, workdir: str | None,
                 connection_string: str | None = None) -> None:
        self.ports = ports
        self.process = process
        self.workdir = workdir
        self._connection_string = connection_string

    @property
    def connection_string(self) -> str:
        return self._connection_string or self.ports.connection_string()

    @classmethod
    def external(cls, connection_string: str) -> Azurite:
        """A storage service run by someone else (another Azurite, or a real account)."""
        return cls(Ports(0, 0, 0), None, None, connection_string)

    @classmethod
    def start(cls, ports: Ports | None = None, in_memory: bool = True, location: str | None = None,
              timeout: float = 30.0) -> Azurite:
        ports = ports or Ports(free_port(), free_port(), free_port())
        workdir = location or tempfile.mkdtemp(prefix="azurite-")
        os.makedirs(workdir, exist_ok=True)
        args = [executable(), "--silent", "--skipApiVersionCheck", "--disableProductStyleUrl", "--loose",
                "--blobPort", str(ports.blob), "--queuePort", str(ports.queue), "--tablePort", str(ports.table)]
        args += ["--inMemoryPersistence"] if in_memory else ["--location", workdir]
        log = open(os.path.join(workdir, "azurite.log"), "wb")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        deadline = time.monotonic() + timeout
        while not all(port_open(p) for p in (ports.blob, ports.queue, ports.table)):
            if process.poll() is not None:
                raise AzuriteError(f"azurite exited with {process.returncode}; see {workdir}/azurite.log")
            if time.monotonic() > deadline:
                process.kill()
                raise AzuriteError(f"azurite did not open ports {ports} within {timeout:.0f} s")
            time.sleep(0.1)
        return cls(ports, process, workdir)

    @classmethod
    def running_or_start(cls, ports: Ports | None = None, in_memory: bool = True,
                         location: str | None = None) -> Azurite:
        ports = ports or Ports()
        if all(port_open(p) for p in (ports.blob, ports.queue, ports.table)):
            return cls(ports, None, None)
        return cls.start(ports, in_memory=in_memory, location=location)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
