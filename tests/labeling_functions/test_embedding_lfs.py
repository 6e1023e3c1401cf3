import numpy as np
import polars as pl
import pytest

import enrich
from enrich.datasets import load_youtube_spam
from labeling_functions import LFDefinitionError, nearest_neighbor_lf, prototype_lf


@pytest.fixture(scope="module")
def comments(minilm):
    """400 bundled comments with their MiniLM embeddings in an ``embedding`` column."""
    data = load_youtube_spam().sample(400, seed=0)
    vectors = minilm.encode(data.get_column("text").to_list(), progress=False)
    return data.with_columns(pl.Series("embedding", vectors))


def test_prototype_lf_fires_near_its_examples(minilm, comments):
    prototypes = minilm.encode(
        ["check out my channel", "subscribe to my youtube channel"], progress=False
    )
    lf = prototype_lf("promo", prototypes, label="SPAM", threshold=0.5)
    votes = enrich.apply([lf], comments, classes=["HAM", "SPAM"], progress=False).votes[:, 0]
    gold = comments.get_column("label").to_numpy()
    fired = votes == 1
    assert 0.05 < fired.mean() < 0.6
    assert (gold[fired] == 1).mean() > 0.85


def test_nearest_neighbor_lf_votes_the_class_of_labeled_neighbours(comments):
    reference, held_out = comments.head(250), comments.tail(150)
    lf = nearest_neighbor_lf(
        "knn",
        reference.get_column("embedding"),
        [("HAM", "SPAM")[y] for y in reference.get_column("label")],
        k=7,
        min_agreement=0.8,
    )
    votes = enrich.apply([lf], held_out, classes=["HAM", "SPAM"], progress=False).votes[:, 0]
    gold = held_out.get_column("label").to_numpy()
    voted = votes != -1
    assert voted.mean() > 0.3
    assert (votes[voted] == gold[voted]).mean() > 0.85


def test_nearest_neighbor_lf_never_counts_an_asset_as_its_own_neighbour(comments):
    ids = comments.get_column("asset_id").to_list()
    labels = comments.get_column("label").to_list()
    vectors = comments.get_column("embedding")
    leaky = nearest_neighbor_lf("leaky", vectors, labels, k=1, min_agreement=1.0)
    honest = nearest_neighbor_lf(
        "honest", vectors, labels, k=1, min_agreement=1.0, reference_ids=ids, id_column="asset_id"
    )
    votes = enrich.apply([leaky, honest], comments, classes=2, progress=False).votes
    gold = np.asarray(labels)
    assert (votes[:, 0] == gold).all()  # each asset finds itself
    assert 0.6 < (votes[:, 1] == gold).mean() < 1.0


def test_embedding_lfs_work_on_image_embeddings(shared_data):
    from embeddings.image import HogPcaImageEncoder

    images = np.load(shared_data / "mnist_t10k" / "X_test_28x28_uint8.npy")[:600]
    digits = np.load(shared_data / "mnist_t10k" / "y_test.npy")[:600]
    encoder = HogPcaImageEncoder().fit(images[:400], progress=False)
    vectors = encoder.encode(images, progress=False)
    data = pl.DataFrame({"embedding": vectors[400:]})
    lf = nearest_neighbor_lf("digit_knn", vectors[:400], digits[:400].tolist(), k=5)
    votes = enrich.apply([lf], data, classes=10, progress=False).votes[:, 0]
    voted = votes != -1
    assert voted.mean() > 0.5
    assert (votes[voted] == digits[400:][voted]).mean() > 0.85


def test_definitions_are_checked():
    with pytest.raises(LFDefinitionError, match="one label per reference vector"):
        nearest_neighbor_lf("knn", [[1.0, 0.0]], [0, 1])
    with pytest.raises(LFDefinitionError, match="threshold is a cosine similarity"):
        prototype_lf("p", [[1.0, 0.0]], label=1, threshold=2.0)
    with pytest.raises(LFDefinitionError, match="reference_ids and id_column together"):
        nearest_neighbor_lf("knn", [[1.0, 0.0]], [0], id_column="asset_id")


def test_wrong_width_vectors_name_the_column():
    lf = prototype_lf("p", [[1.0, 0.0, 0.0]], label=1)
    with pytest.raises(enrich.LFApplicationError, match="column 'embedding' of LF 'p'"):
        enrich.apply([lf], pl.DataFrame({"embedding": [[1.0, 0.0]]}), classes=2)


def test_version_follows_the_prototypes():
    a = prototype_lf("p", [[1.0, 0.0]], label=1)
    assert a.version == prototype_lf("p", [[2.0, 0.0]], label=1).version  # same direction
    assert a.version != prototype_lf("p", [[0.0, 1.0]], label=1).version
