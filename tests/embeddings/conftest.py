"""Fixtures of the embeddings tests: real data and a tiny CLIP model built locally.

``minilm`` (the bundled MiniLM, loaded once) and ``shared_data`` come from tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest


@pytest.fixture(scope="session")
def youtube(shared_data: Path) -> pl.DataFrame:
    """300 real YouTube comments (UCI) of at most 160 characters, with their spam label."""
    frame = pl.read_csv(shared_data / "uci_youtube_spam" / "Youtube01-Psy.csv")
    return (
        frame.select(text=pl.col("CONTENT"), spam=pl.col("CLASS"))
        .filter(pl.col("text").str.len_chars() <= 160)
        .head(300)
    )


@pytest.fixture(scope="session")
def mnist(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The first 600 MNIST test digits (uint8, 28 x 28) and their labels."""
    folder = shared_data / "mnist_t10k"
    images = np.load(folder / "X_test_28x28_uint8.npy", mmap_mode="r")[:600]
    labels = np.load(folder / "y_test.npy")[:600]
    return np.ascontiguousarray(images), labels


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A small, randomly initialised CLIPModel + image processor saved with save_pretrained.

    No CLIP weights can be downloaded here; this exercises the load-by-path code path with a
    real transformers CLIPModel. Seeded inside ``fork_rng`` so global RNG state is untouched.
    """
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    config = CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "vocab_size": 99,
            "max_position_embeddings": 16,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=24,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIPModel(config)
    folder = tmp_path_factory.mktemp("tiny-clip")
    model.save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    return folder
