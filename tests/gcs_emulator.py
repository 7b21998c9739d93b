"""A real Google Cloud Storage emulator server for the tests.

``gcp-storage-emulator`` (PyPI) runs as a subprocess on 127.0.0.1 with a free
port, storing objects on disk below ``root/.cloudstorage/BUCKET/NAME`` — which
lets a test corrupt an object's bytes behind the server's back while its
recorded CRC32C stays the same.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmulatorServer:
    """A running emulator: its URL and where it keeps objects."""

    host: str
    root: Path
    process: subprocess.Popen[bytes]

    def object_path(self, bucket: str, name: str) -> Path:
        """The file that holds the bytes of ``gs://bucket/name``."""
        return self.root / ".cloudstorage" / bucket / name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_emulator(root: Path, timeout_s: float = 20.0) -> EmulatorServer:
    """Start the emulator and wait until it answers HTTP requests."""
    port = free_port()
    executable = Path(sys.executable).with_name("gcp-storage-emulator")
    env = {**os.environ, "STORAGE_BASE": str(root)}
    process = subprocess.Popen(
        [str(executable), "start", "--host=127.0.0.1", f"--port={port}", "--quiet"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gcp-storage-emulator exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{host}/storage/v1/b?project=p", timeout=1):
                return EmulatorServer(host, root, process)
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"gcp-storage-emulator did not answer on {host} within {timeout_s} s")


def stop_emulator(server: EmulatorServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
