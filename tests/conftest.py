"""Fixtures shared by the whole test suite.

The real datasets live in ``../shared/data`` beside the checkout (see its README.md); CI
clones the project next to a copy of that folder, so tests find it relative to the repo.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ENRICH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real datasets (``../shared/data``)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared datasets not found at {SHARED_DATA}; set ENRICH_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm():
    """The bundled all-MiniLM-L6-v2 text encoder, loaded once per test session."""
    from embeddings.text import TextEncoder

    encoder = TextEncoder()
    encoder.encode(["warm up"], progress=False)
    return encoder


@pytest.fixture
def small_disk(tmp_path):
    """Mount a small tmpfs: ``small_disk(folder, size)`` (root only; skipped with the reason)."""
    mounted: list[Path] = []

    def mount(folder: Path, size: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or 'not root'}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


# -- an S3-compatible server on 127.0.0.1 (moto's server mode) --------------------------------
@pytest.fixture(scope="session")
def s3_server():
    """Start moto's S3 server on a free port of 127.0.0.1 for the session; yield its URL.

    It runs in its own process: delta-rs calls that hold the GIL while they wait on HTTP
    would otherwise wait on a server thread of this very process.
    """
    import socket
    import sys
    import time
    import urllib.request

    try:
        import moto.server  # noqa: F401
    except ImportError:  # pragma: no cover - the dev extra installs it
        pytest.fail("moto[server] is not installed; pip install -c constraints.txt -e '.[dev]'")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"moto's S3 server did not start on {url}")
            time.sleep(0.2)
    yield url
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


@pytest.fixture
def s3_bucket(s3_server, request):
    """A new, empty bucket on the test S3 server: ``(s3://<bucket>, storage_options)``.

    The options are the object_store keys delta-rs and polars take (the job's
    ``[storage] options``).
    """
    import re
    import urllib.request
    import uuid

    options = {
        "aws_endpoint_url": s3_server,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "aws_region": "us-east-1",
        "aws_allow_http": "true",
    }
    stem = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    bucket = f"{stem}-{uuid.uuid4().hex[:8]}"
    urllib.request.urlopen(urllib.request.Request(f"{s3_server}/{bucket}", method="PUT")).close()
    return f"s3://{bucket}", options
