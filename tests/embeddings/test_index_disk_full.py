"""VectorIndex.save on a full disk: one clear error, no temporary file left (issue 13 item 11)."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.index import IndexOperationError, VectorIndex


def test_save_on_a_full_disk_says_no_space_and_leaves_no_temporary_file(small_disk, tmp_path):
    folder = small_disk(tmp_path / "small", "256k")
    rng = np.random.default_rng(0)
    index = VectorIndex(128, kind="flat")
    index.add(np.arange(2000), rng.normal(size=(2000, 128)).astype(np.float32))
    target = folder / "index"
    with pytest.raises(IndexOperationError, match=f"no space left on {folder}"):
        index.save(target)
    assert not list(target.glob(".*.tmp"))


def test_a_temporary_file_of_a_dead_process_is_removed_by_the_next_save(tmp_path):
    target = tmp_path / "index"
    target.mkdir()
    leftover = target / ".index.faiss.999999999.tmp"
    leftover.write_bytes(b"x" * 1000)
    index = VectorIndex(4, kind="flat")
    index.add(np.arange(3), np.eye(3, 4, dtype=np.float32))
    index.save(target)
    assert not leftover.exists()
    assert len(VectorIndex.load(target)) == 3
