"""Rebuild ``enrich/data/mnist_sample.npz``: 2,000 MNIST test digits for the image notebook.

Users do not have ``../shared/data``, so the image examples ship a small sample: the first
200 images of each digit 0-9 from the MNIST test set (in test-set order), with their labels
and their row number in the test set.

Usage (from the repository root)::

    python scripts/build_mnist_sample.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE = REPO_ROOT.parent / "shared" / "data" / "mnist_t10k"
OUTPUT = REPO_ROOT / "enrich" / "data" / "mnist_sample.npz"
PER_DIGIT = 200


def main() -> None:
    images = np.load(SOURCE / "X_test_28x28_uint8.npy")
    labels = np.load(SOURCE / "y_test.npy")
    rows = np.sort(np.concatenate([np.flatnonzero(labels == d)[:PER_DIGIT] for d in range(10)]))
    np.savez_compressed(
        OUTPUT, images=images[rows].astype(np.uint8), labels=labels[rows].astype(np.int8), rows=rows
    )
    print(f"wrote {len(rows)} images to {OUTPUT}")


if __name__ == "__main__":
    main()
