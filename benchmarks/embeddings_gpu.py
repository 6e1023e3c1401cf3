"""The text encoder's GPU path against raw sentence-transformers on the same texts (issue 19).

One short, prepared run for a session that is lent a GPU machine: the texts are the SMS,
YouTube and sentiment sets of ``../shared/data`` repeated to ``--n`` (300,000 by default:
short texts, as a nightly run's new assets are), the model the bundled all-MiniLM-L6-v2.

- direct: ``SentenceTransformer(path, device=...).encode(texts, batch_size=B,
  normalize_embeddings=True)`` in float32 at batch 64 (its default use) and 512;
- TextEncoder: ``TextEncoder(device=...).encode(texts)`` with its defaults on that device
  (batch size from the device's memory, tokenization in worker processes running ahead,
  pinned length-sorted batches, float16 where its vectors keep a cosine >= 0.999), and with
  ``precision="float32"``.

Each run is timed once after a warm-up on the first 2,000 texts; each TextEncoder run's
vectors are compared with direct's (worst and mean cosine over every text). The aim: at least
3x direct at batch 64, a cosine of at least 0.999. Without a GPU it runs on the CPU (use a
small ``--n``): that checks the script, not the speed.

Run from the repository root::

    .venv/bin/python -m benchmarks.embeddings_gpu                      # on a GPU machine
    .venv/bin/python -m benchmarks.embeddings_gpu --device cpu --n 300  # a check of the script
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np

from benchmarks.embeddings_speed import sentiment_sentences, sms_messages, youtube_comments
from embeddings.text import TextEncoder, default_text_model_path


def texts_of_size(n: int) -> list[str]:
    """``n`` texts: the three bundled sets in turn, repeated as often as needed."""
    pool = [
        *sms_messages()["text"].to_list(),
        *youtube_comments()["text"].to_list(),
        *sentiment_sentences()["text"].to_list(),
    ]
    return [pool[i % len(pool)] for i in range(n)]


def timed(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> tuple[float, np.ndarray]:
    """Seconds to encode ``texts`` (after a warm-up on the first 2,000), and the vectors."""
    encode(texts[:2000])
    start = time.perf_counter()
    vectors = np.asarray(encode(texts), dtype=np.float32)
    return time.perf_counter() - start, vectors


def main(argv: Sequence[str] | None = None) -> int:
    """Print one markdown table: texts/s and speed-up of each run, cosine to direct's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300_000, help="texts to encode")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:1, cpu...")
    args = parser.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no GPU is visible to torch; pass --device cpu to check the script")
    texts = texts_of_size(args.n)
    model = SentenceTransformer(str(default_text_model_path()), device=args.device)

    def direct(batch_size: int) -> Callable[[list[str]], np.ndarray]:
        return lambda t: model.encode(t, batch_size=batch_size, normalize_embeddings=True)

    runs: list[tuple[str, Callable[[list[str]], np.ndarray]]] = [
        ("sentence-transformers direct (fp32, batch 64)", direct(64)),
        ("sentence-transformers direct (fp32, batch 512)", direct(512)),
        ("TextEncoder (defaults)", TextEncoder(device=args.device).encode),
        ("TextEncoder (float32)", TextEncoder(device=args.device, precision="float32").encode),
    ]
    results = [(name, *timed(encode, texts)) for name, encode in runs]
    base_s, reference = results[0][1], results[0][2]
    device = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    print(f"MiniLM-L6 on {len(texts):,} short texts, {device}\n")
    print("| run | seconds | texts/s | speed-up vs direct (batch 64) | worst / mean cosine |")
    print("|---|---:|---:|---:|---|")
    for name, seconds, vectors in results:
        cosine = np.sum(vectors * reference, axis=1)
        print(
            f"| {name} | {seconds:.2f} | {len(texts) / seconds:,.0f} | {base_s / seconds:.2f}x "
            f"| {cosine.min():.4f} / {cosine.mean():.5f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
