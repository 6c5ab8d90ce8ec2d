"""Prism serving a platform's OpenAPI description on loopback, for the tests that check
every request a connector makes against the platform's own description.

``--errors``: a request that breaks the description (a wrong parameter, a missing header,
a body of the wrong shape) is answered with an error instead of an example, and the
connector raises. Skips, saying why, where the description or Prism (``make prism``) is
missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = Path(os.environ.get("KINDLY_SPECS", ROOT.parent / "shared" / "specs"))

__all__ = ["SPECS", "prism_binary", "serving"]


def prism_binary() -> str | None:
    local = ROOT / ".prism" / "node_modules" / ".bin" / "prism"
    return str(local) if local.exists() else shutil.which("prism")


@contextmanager
def serving(spec: Path, what: str, *, dynamic: bool = False) -> Iterator[str]:
    """Prism mocking ``spec`` (``what`` names it in a skip); yields its base URL.
    ``dynamic``: answers made from the schemas, for a description whose own examples
    break them (Prism with ``--errors`` refuses to serve those)."""
    if not spec.exists():
        pytest.skip(f"{what} is not at {spec}")
    binary = prism_binary()
    if binary is None:
        pytest.skip("Prism is not installed (make prism needs npm)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            binary,
            "mock",
            "--errors",
            # The same made-up answers every run: a test that passes once passes again.
            *(["--dynamic", "--seed", "kindly"] if dynamic else []),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            str(spec),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    listening = threading.Event()

    def drain() -> None:
        # Read Prism's log as it comes (a full pipe would stall it), and note when it listens.
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Prism is listening" in line:
                listening.set()
        listening.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not listening.wait(120) or process.poll() is not None:
            pytest.fail("Prism did not start:\n" + "".join(lines[-20:]))
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
