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
