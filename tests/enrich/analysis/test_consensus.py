"""Consensus between human annotators: hand-computed cases, published agreement examples,
repeated answers, unknown labels, alignment with LF votes, and real crowd votes (crowd/dog)."""

from __future__ import annotations

import datetime as dt
from itertools import permutations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy.stats import spearmanr

from enrich.analysis.agreement import (
    AnnotationMatrix,
    annotation_matrix,
    fleiss_kappa,
    krippendorff_alpha,
)
from enrich.analysis.consensus import Consensus, combine_votes, consensus
from enrich.curation.review import review_queue
from enrich.errors import (
    DuplicateAnnotationError,
    InputError,
    MissingColumnError,
    UnknownLabelError,
)
from enrich.models.label_model import LabelModel
from enrich.models.majority_vote import MajorityVote
from enrich.votes import VoteMatrix

CLASSES = ["cat", "dog"]


def three_assets() -> pl.DataFrame:
    """a: cat cat dog; b: dog dog dog; c: cat dog cat (annotators ann, bob, cy)."""
    return pl.DataFrame(
        {
            "asset_id": ["a", "a", "a", "b", "b", "b", "c", "c", "c"],
            "annotator": ["ann", "bob", "cy"] * 3,
            "label": ["cat", "cat", "dog", "dog", "dog", "dog", "cat", "dog", "cat"],
        }
    )


# -- the annotation matrix -------------------------------------------------------------------
def test_long_form_becomes_one_column_per_annotator_in_order_of_appearance():
    long = pl.DataFrame(
        {
            "asset_id": ["x", "y", "x", "z"],
            "annotator": ["bob", "ann", "ann", "bob"],
            "label": ["dog", "cat", "cat", "dog"],
        }
    )
    matrix = annotation_matrix(long, classes=CLASSES)
    assert matrix.asset_ids.to_list() == ["x", "y", "z"]
    assert matrix.annotators.to_list() == ["bob", "ann"]
    assert matrix.votes.tolist() == [[1, 0], [-1, 0], [1, -1]]
    assert matrix.votes.dtype == np.int32
    assert matrix.n_annotations.tolist() == [2, 1, 1]
    assert matrix.class_names == ("cat", "dog")
    assert matrix.to_long().sort("asset_id", "annotator").rows() == [
        ("x", "ann", 0, "cat"),
        ("x", "bob", 1, "dog"),
        ("y", "ann", 0, "cat"),
        ("z", "bob", 1, "dog"),
    ]


def test_classes_inferred_from_text_and_from_integer_labels_and_ids_keep_their_type():
    text = annotation_matrix(three_assets())
    assert text.class_names == ("cat", "dog")
    ints = annotation_matrix(
        pd.DataFrame({"asset_id": [10, 10, 11], "annotator": [7, 8, 7], "label": [2, 0, 1]})
    )
    assert ints.class_names == ("0", "1", "2")
    assert ints.asset_ids.dtype == pl.Int64 and ints.annotators.dtype == pl.Int64
    assert ints.votes.tolist() == [[2, 0], [1, -1]]
    named = annotation_matrix(
        pl.DataFrame({"asset_id": ["a"], "annotator": ["w"], "label": [1]}), classes=["no", "yes"]
    )
    assert named.class_names == ("no", "yes") and named.votes.tolist() == [[1]]


def test_other_column_names():
    long = pl.DataFrame({"question": ["q1", "q1"], "worker": ["w1", "w2"], "answer": [0, 1]})
    matrix = annotation_matrix(
        long, classes=2, asset_column="question", annotator_column="worker", label_column="answer"
    )
    assert matrix.votes.tolist() == [[0, 1]]
    with pytest.raises(MissingColumnError, match=r"no column\(s\) \['asset_id', 'annotator'"):
        annotation_matrix(long, classes=2)
    with pytest.raises(MissingColumnError, match="'when' is not a column"):
        annotation_matrix(
            long,
            classes=2,
            asset_column="question",
            annotator_column="worker",
            label_column="answer",
            time_column="when",
        )


# -- repeated answers ------------------------------------------------------------------------
def test_repeated_answer_without_time_is_refused_with_the_pair_named():
    long = pl.DataFrame(
        {"asset_id": ["a", "a", "b"], "annotator": ["ann", "ann", "ann"], "label": [0, 1, 1]}
    )
    with pytest.raises(DuplicateAnnotationError, match="annotator 'ann' labeled asset 'a' 2 times"):
        annotation_matrix(long, classes=2)
    with pytest.raises(DuplicateAnnotationError, match="add a 'time' column"):
        consensus(long, classes=2)


def test_repeated_answer_with_time_keeps_the_latest():
    long = pl.DataFrame(
        {
            "asset_id": ["a", "a", "a", "b", "b"],
            "annotator": ["ann", "ann", "bob", "ann", "bob"],
            "label": ["dog", "cat", "cat", "dog", "dog"],
            "time": [
                dt.datetime(2026, 1, 2),  # ann's second answer on a: the one kept
                dt.datetime(2026, 1, 1),
                dt.datetime(2026, 1, 1),
                None,  # a single answer needs no time
                dt.datetime(2026, 1, 5),
            ],
        }
    )
    matrix = annotation_matrix(long, classes=CLASSES)
    assert matrix.votes.tolist() == [[1, 0], [1, 1]]
    assert matrix.n_superseded == 1
    assert "superseded" in str(matrix)
    # the same answer given twice at the same time is not ambiguous
    same = long.with_columns(pl.Series("label", ["dog", "dog", "cat", "dog", "dog"]))
    same = same.with_columns(pl.lit(dt.datetime(2026, 1, 1)).alias("time"))
    assert annotation_matrix(same, classes=CLASSES).votes.tolist() == [[1, 0], [1, 1]]


def test_repeated_answers_at_the_same_latest_time_or_without_time_are_refused():
    tied = pl.DataFrame(
        {
            "asset_id": ["a", "a"],
            "annotator": ["ann", "ann"],
            "label": ["dog", "cat"],
            "time": [3, 3],
        }
    )
    with pytest.raises(DuplicateAnnotationError, match="different labels at the same latest time"):
        annotation_matrix(tied, classes=CLASSES)
    untimed = tied.with_columns(pl.Series("time", [1, None]))
    with pytest.raises(DuplicateAnnotationError, match=r"\(row 1\) has no time"):
        annotation_matrix(untimed, classes=CLASSES)


# -- unknown labels and bad input ------------------------------------------------------------
def test_unknown_labels_are_refused_with_the_values_quoted():
    long = three_assets().with_columns(
        pl.when(pl.col("asset_id") == "c").then(pl.lit("bird")).otherwise("label").alias("label")
    )
    with pytest.raises(
        UnknownLabelError, match=r"3 annotation\(s\) .*classes \['cat', 'dog'\]: 'bird' \(3x\)"
    ):
        annotation_matrix(long, classes=CLASSES)
    one_based = pl.DataFrame({"asset_id": [1, 2], "annotator": ["w", "w"], "label": [1, 2]})
    with pytest.raises(
        UnknownLabelError, match=r"outside the class ids 0..1; if your labels start"
    ):
        annotation_matrix(one_based, classes=CLASSES)
    negative = one_based.with_columns(pl.Series("label", [0, -1]))
    with pytest.raises(UnknownLabelError, match=r"-1 \(1x\)"):
        annotation_matrix(negative)
    with pytest.raises(InputError, match=r"holds text labels .* classes is a count"):
        annotation_matrix(three_assets(), classes=2)


def test_bad_input_is_refused_clearly():
    with pytest.raises(InputError, match=r"'label' has 1 null value\(s\) \(rows \[1\]\)"):
        annotation_matrix(
            pl.DataFrame({"asset_id": ["a", "b"], "annotator": ["w", "w"], "label": ["cat", None]})
        )
    with pytest.raises(InputError, match="dtype Float64; labels must be class names"):
        annotation_matrix(pl.DataFrame({"asset_id": ["a"], "annotator": ["w"], "label": [0.5]}))
    with pytest.raises(InputError, match="distinct names"):
        annotation_matrix(three_assets(), classes=["cat", "cat"])
    with pytest.raises(InputError, match="has no rows"):
        annotation_matrix(three_assets().head(0))
    with pytest.raises(InputError, match="Expected a polars DataFrame"):
        annotation_matrix([("a", "w", 1)])
    with pytest.raises(InputError, match="single class"):
        consensus(pl.DataFrame({"asset_id": ["a", "a"], "annotator": ["v", "w"], "label": [0, 0]}))
    with pytest.raises(InputError, match=r"outside -1\.\.1"):
        AnnotationMatrix(
            votes=np.array([[2]]),
            asset_ids=pl.Series(["a"]),
            annotators=pl.Series(["w"]),
            class_names=("x", "y"),
        )


# -- agreement statistics --------------------------------------------------------------------
def test_alpha_and_kappa_by_hand():
    # a: cat cat dog, b: dog dog dog, c: cat dog cat (3 answers each, weight 1/(3-1)).
    # Coincidences: o_cc = 1 + 1, o_dd = 3, o_cd = o_dc = 1 + 1; n_cat = 4, n_dog = 5, n = 9.
    # alpha = 1 - (n - 1) * (o_cd + o_dc) / (n^2 - n_cat^2 - n_dog^2) = 1 - 8 * 4 / 40 = 0.2.
    # Fleiss: P_i = (1/3, 1, 1/3) -> P = 5/9; p = (4/9, 5/9) -> Pe = 41/81;
    # kappa = (45/81 - 41/81) / (40/81) = 0.1.
    votes = annotation_matrix(three_assets(), classes=CLASSES)
    assert krippendorff_alpha(votes) == pytest.approx(0.2)
    assert fleiss_kappa(votes) == pytest.approx(0.1)
    result = consensus(three_assets(), classes=CLASSES, random_state=0)
    assert result.alpha == pytest.approx(0.2)
    assert result.fleiss_kappa == pytest.approx(0.1)
    # three answers per annotator: agreement statistics are defined, a ranking is not
    assert set(result.notes) == {"reliability"}
    assert "too few to rank" in result.notes["reliability"]


def test_alpha_matches_krippendorffs_published_examples():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", Annenberg School for
    # Communication Departmental Papers 43, section C (4 observers x 12 units, missing data):
    # alpha_nominal = 0.743. Rows here are units, columns observers; -1 = missing.
    observers = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, -1, -1, -1],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, -1, 3],
        [-1, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, -1],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, -1],
    ]
    assert krippendorff_alpha(np.array(observers).T) == pytest.approx(0.743, abs=5e-4)
    # The computational example of Wikipedia's "Krippendorff's alpha" article (3 coders x
    # 15 units, from Krippendorff's Content Analysis): alpha_nominal = 0.691.
    coders = [
        [-1, -1, -1, -1, -1, 3, 4, 1, 2, 1, 1, 3, 3, -1, 3],
        [1, -1, 2, 1, 3, 3, 4, 3, -1, -1, -1, -1, -1, -1, -1],
        [-1, -1, 2, 1, 3, 4, 4, -1, 2, 1, 1, 3, 3, -1, 4],
    ]
    assert krippendorff_alpha(np.array(coders).T) == pytest.approx(0.691, abs=5e-4)


def test_fleiss_kappa_matches_the_published_example():
    # Wikipedia's "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories,
    # P = 0.378, Pe = 0.213, kappa = 0.210.
    counts = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    votes = np.stack([np.repeat(np.arange(5), row) for row in counts])
    assert fleiss_kappa(votes) == pytest.approx(0.210, abs=5e-4)


def _alpha_by_pairs(votes: np.ndarray) -> float:
    """Nominal alpha written straight from its definition, one ordered pair at a time."""
    pairs_same = pairs_total = 0.0
    values = []
    for row in votes:
        answers = [int(v) for v in row if v >= 0]
        if len(answers) < 2:
            continue
        values.extend(answers)
        for a, b in permutations(answers, 2):
            pairs_total += 1 / (len(answers) - 1)
            pairs_same += (a == b) / (len(answers) - 1)
    n = len(values)
    disagree_observed = (pairs_total - pairs_same) / n
    _, counts = np.unique(values, return_counts=True)
    disagree_expected = (n * n - np.sum(counts**2)) / (n * (n - 1))
    return 1 - disagree_observed / disagree_expected


def test_alpha_equals_the_pairwise_definition_on_real_crowd_votes(shared_data):
    answers = pl.read_csv(shared_data / "crowd" / "dog" / "answer.csv")
    matrix = annotation_matrix(
        answers.head(1500),
        asset_column="question",
        annotator_column="worker",
        label_column="answer",
    )
    votes = matrix.votes.copy()
    votes[::3, :] = np.where(np.arange(votes.shape[1]) % 2 == 0, -1, votes[::3, :])  # ragged
    assert krippendorff_alpha(votes) == pytest.approx(_alpha_by_pairs(votes), rel=1e-12)


def test_undefined_agreement_is_none_with_the_reason():
    uneven = pl.DataFrame(
        {"asset_id": ["a", "a", "b"], "annotator": ["v", "w", "v"], "label": ["cat", "dog", "dog"]}
    )
    result = consensus(uneven, classes=CLASSES)
    assert result.fleiss_kappa is None
    assert "between 1 and 2 annotations" in result.notes["fleiss_kappa"]
    assert result.alpha is not None
    single = pl.DataFrame({"asset_id": ["a", "b"], "annotator": ["v", "w"], "label": [0, 1]})
    result = consensus(single, classes=2)
    assert result.alpha is None and "no asset has two or more" in result.notes["alpha"]
    assert "needs at least 2" in result.notes["fleiss_kappa"]
    assert "no asset has two or more" in str(result)
    with pytest.raises(InputError, match="alpha is undefined: every compared annotation"):
        krippendorff_alpha([[1, 1], [1, 1]])
    with pytest.raises(InputError, match="kappa is undefined: every annotation is the same"):
        fleiss_kappa([[1, 1], [1, 1]])
    assert krippendorff_alpha([[0, 0, 0], [1, 1, -1]]) == 1.0


# -- consensus -------------------------------------------------------------------------------
def test_consensus_tables_by_hand():
    result = consensus(three_assets(), classes=CLASSES, random_state=0)
    assert isinstance(result, Consensus)
    per_asset = result.per_asset
    assert per_asset.columns == [
        "asset_id",
        "label",
        "label_name",
        "confidence",
        "agreement",
        "n_annotations",
    ]
    assert per_asset.select("asset_id", "label_name", "n_annotations").rows() == [
        ("a", "cat", 3),
        ("b", "dog", 3),
        ("c", "cat", 3),
    ]
    assert per_asset["agreement"].to_list() == pytest.approx([2 / 3, 1.0, 2 / 3])
    assert np.allclose(result.proba.sum(axis=1), 1.0)
    assert per_asset["confidence"].to_list() == pytest.approx(result.proba.max(axis=1).tolist())
    assert result.labels.tolist() == [0, 1, 0]
    per_annotator = result.per_annotator
    assert per_annotator.columns == [
        "annotator",
        "n_annotations",
        "reliability",
        "agreement_with_consensus",
    ]
    # ann agrees with the consensus on a, b, c; bob on a, b; cy on b, c
    assert per_annotator.select("annotator", "n_annotations").rows() == [
        ("ann", 3),
        ("bob", 3),
        ("cy", 3),
    ]
    assert per_annotator["agreement_with_consensus"].to_list() == pytest.approx([1, 2 / 3, 2 / 3])
    # the default model is enrich's LabelModel, every annotator an annotator-kind LF
    assert isinstance(result.model, LabelModel)
    assert result.model.lf_role_.tolist() == ["annotator"] * 3
    assert per_annotator["reliability"].to_list() == pytest.approx(
        result.model.lf_accuracy_.tolist()
    )
    rel = per_annotator["reliability"].to_list()
    assert rel[0] > rel[1] and rel[0] > rel[2]


def test_confusion_per_annotator_and_as_a_long_table():
    result = consensus(three_assets(), classes=CLASSES, random_state=0)
    matrix = result.confusion("ann")
    assert matrix.columns == ["true_label", "cat", "dog"]
    assert matrix["true_label"].to_list() == ["cat", "dog"]
    assert matrix.select("cat", "dog").sum_horizontal().to_list() == pytest.approx([1.0, 1.0])
    counts = result.confusion("cy", normalize=False)
    # soft counts: cy's 3 answers spread over the true classes by the posterior
    assert float(counts.select("cat", "dog").to_numpy().sum()) == pytest.approx(3.0)
    # cy voted dog on a and b, cat on c: (true cat, vote dog) = P(a is cat) + P(b is cat)
    p_cat = result.proba[:, 0]
    assert counts.filter(pl.col("true_label") == "cat")["dog"][0] == pytest.approx(
        p_cat[0] + p_cat[1]
    )
    assert counts.filter(pl.col("true_label") == "cat")["cat"][0] == pytest.approx(p_cat[2])
    long = result.confusion_table()
    assert long.columns == ["annotator", "true_label", "vote", "count", "rate"]
    assert long.height == 3 * 2 * 2
    ann = long.filter(pl.col("annotator") == "ann").sort("true_label", "vote")
    assert ann["rate"].to_list() == pytest.approx(
        matrix.sort("true_label").select("cat", "dog").to_numpy().ravel().tolist()
    )
    with pytest.raises(InputError, match="annotator 'zed' is not among the 3 annotators"):
        result.confusion("zed")


def test_integer_annotator_names_and_missing_annotations_are_not_evidence():
    answers = pl.DataFrame(
        {
            "asset_id": [1, 1, 1, 2, 2, 3],
            "annotator": [7, 8, 9, 7, 8, 9],
            "label": [1, 1, 0, 0, 0, 1],
        }
    )
    result = consensus(answers, classes=["no", "yes"], random_state=0)
    assert result.confusion(7)["true_label"].to_list() == ["no", "yes"]
    assert result.confusion("7").columns == ["true_label", "no", "yes"]
    # asset 3 has a single answer: the consensus follows it, agreement 1
    row = result.per_asset.filter(pl.col("asset_id") == 3).row(0, named=True)
    assert row["label_name"] == "yes" and row["agreement"] == 1.0 and row["n_annotations"] == 1


def test_another_model_and_an_annotation_matrix_as_input():
    matrix = annotation_matrix(three_assets(), classes=CLASSES)
    result = consensus(matrix, model=MajorityVote(cardinality=2))
    assert isinstance(result.model, MajorityVote)
    assert result.per_asset["label_name"].to_list() == ["cat", "dog", "cat"]
    # without lf_accuracy_ the reliability is the mean posterior of the class voted
    assert result.per_annotator["reliability"].to_list() == pytest.approx([1.0, 2 / 3, 2 / 3])
    template = LabelModel(cardinality=2, max_iter=5)
    result = consensus(matrix, model=template, random_state=3)
    assert result.model is not template and not hasattr(template, "classes_")
    assert result.model.random_state == 3 and result.model.max_iter == 5
    with pytest.raises(InputError, match="cardinality=3 but the annotations have 2 classes"):
        consensus(matrix, model=LabelModel(cardinality=3))
    with pytest.raises(InputError, match="differ from the annotation matrix's classes"):
        consensus(matrix, classes=["dog", "cat"])
    with pytest.raises(InputError, match="fit\\(L\\) and predict_proba"):
        consensus(matrix, model="dawid-skene")


def test_same_seed_same_result_and_row_order_does_not_matter():
    first = consensus(three_assets(), classes=CLASSES, random_state=0)
    again = consensus(three_assets(), classes=CLASSES, random_state=0)
    assert first.per_asset.equals(again.per_asset)
    shuffled = consensus(three_assets().reverse(), classes=CLASSES, random_state=0)
    assert (
        shuffled.per_asset.sort("asset_id")
        .select("label", "agreement")
        .equals(first.per_asset.select("label", "agreement"))
    )


def test_renders_as_a_table_and_feeds_the_review_queue():
    result = consensus(three_assets(), classes=CLASSES, random_state=0)
    text = str(result)
    assert text.startswith("Consensus of 3 annotators on 3 assets (2 classes)")
    assert "Krippendorff's alpha: 0.200" in text and "Fleiss' kappa: 0.100" in text
    assert "<table" in result._repr_html_()
    matrix_text = str(result.matrix)
    assert matrix_text.startswith("Annotations: 3 assets x 3 annotators")
    assert "cat" in matrix_text
    enriched = result.per_asset.with_columns(conflict=pl.lit(False))
    queue = review_queue(
        enriched,
        annotations_agreement=result.per_asset,
        min_agreement=0.8,
        weights={"low_confidence": 0.0},
    )
    assert set(queue.asset_ids.to_list()) == {"a", "c"}
    assert queue.reason_counts["annotator_disagreement"] == 2


# -- human votes and LF votes in one label model ---------------------------------------------
def lf_votes() -> VoteMatrix:
    # two keyword LFs for "dog" (class 1) and one for "cat" (class 0) on eight assets
    votes = np.array(
        [
            [1, -1, -1],  # p
            [1, 1, -1],  # q
            [-1, -1, 0],  # r
            [1, -1, 0],  # s: the LFs disagree
            [-1, -1, -1],  # t: no LF fires
            [-1, -1, 0],  # u
            [-1, 1, -1],  # v
            [-1, -1, 0],  # w
        ],
        dtype=np.int32,
    )
    return VoteMatrix(
        votes=votes,
        lf_names=("barks", "leash", "meows"),
        asset_ids=pl.Series("asset_id", list("pqrstuvw")),
        lf_versions=("v1", "v1", "v1"),
        class_names=("cat", "dog"),
    )


def humans() -> AnnotationMatrix:
    ann = ["cat", "dog", "cat", "dog", "dog", "cat"]  # on s, t, u, v, p, r
    bob = ["dog", "cat", "dog", "cat", "cat", "dog"]  # on p, s, t, r, w, q
    answers = pl.DataFrame(
        {
            "asset_id": list("stuvpr") + list("pstrwq"),
            "annotator": ["ann"] * 6 + ["bob"] * 6,
            "label": ann + bob,
        }
    )
    return annotation_matrix(answers, classes=CLASSES)


def test_combine_votes_aligns_human_columns_by_asset_id():
    combined = combine_votes(lf_votes(), humans())
    assert combined.lf_names == ("barks", "leash", "meows", "annotator:ann", "annotator:bob")
    assert combined.asset_ids.to_list() == list("pqrstuvw")
    assert combined.votes[:, :3].tolist() == lf_votes().votes.tolist()
    assert combined.votes[:, 3:].tolist() == [
        [1, 1],
        [-1, 1],
        [0, 0],
        [0, 0],
        [1, 1],
        [0, -1],
        [1, -1],
        [-1, 0],
    ]
    assert combined.lf_versions == ("v1", "v1", "v1", "human", "human")
    assert combined.class_names == ("cat", "dog")


def test_human_and_lf_votes_go_into_the_same_label_model():
    combined = combine_votes(lf_votes(), humans())
    lfs_only = LabelModel(cardinality=2, random_state=0).fit(lf_votes())
    both = LabelModel(cardinality=2, random_state=0).fit(combined)
    assert both.lf_role_.tolist() == ["detector", "detector", "detector", "annotator", "annotator"]
    # s: 'barks' says dog, 'meows' says cat -> a tie for the LFs; both humans say cat
    assert lfs_only.predict_proba(lf_votes())[3, 0] == pytest.approx(0.5, abs=0.2)
    assert both.predict(combined)[3] == 0
    assert both.predict_proba(combined)[3, 0] > lfs_only.predict_proba(lf_votes())[3, 0]
    # t: no LF fires; two humans say dog
    assert both.predict(combined)[4] == 1


def test_combine_votes_with_other_id_types_and_unmatched_assets():
    votes = lf_votes()
    numbered = VoteMatrix(
        votes=votes.votes[:5],
        lf_names=votes.lf_names,
        asset_ids=pl.Series("asset_id", [1, 2, 3, 4, 5]),
        class_names=("cat", "dog"),
    )
    answers = pl.DataFrame(
        {"asset_id": ["4", "9"], "annotator": ["ann", "ann"], "label": ["cat", "dog"]}
    )
    matrix = annotation_matrix(answers, classes=CLASSES)
    with pytest.raises(InputError, match=r"1 annotated asset\(s\) are not in the vote matrix.*'9'"):
        combine_votes(numbered, matrix)
    combined = combine_votes(numbered, matrix, unmatched="drop")
    assert combined.votes[:, 3].tolist() == [-1, -1, -1, 0, -1]
    assert combined.lf_versions == ()
    assert combined.asset_ids.to_list() == [1, 2, 3, 4, 5]


def test_combine_votes_refuses_mismatched_classes_and_other_inputs():
    swapped = annotation_matrix(
        pl.DataFrame({"asset_id": ["p"], "annotator": ["ann"], "label": ["dog"]}),
        classes=["dog", "cat"],
    )
    with pytest.raises(InputError, match=r"classes \['cat', 'dog'\] differ from the annotations'"):
        combine_votes(lf_votes(), swapped)
    with pytest.raises(InputError, match="must be an enrich VoteMatrix"):
        combine_votes(lf_votes().votes, humans())
    with pytest.raises(InputError, match="must be an AnnotationMatrix"):
        combine_votes(lf_votes(), pl.DataFrame({"asset_id": ["p"]}))
    with pytest.raises(InputError, match="unmatched must be 'error' or 'drop'"):
        combine_votes(lf_votes(), humans(), unmatched="ignore")
    repeated = VoteMatrix(
        votes=np.zeros((2, 1), dtype=np.int32),
        lf_names=("x",),
        asset_ids=pl.Series(["p", "p"]),
    )
    with pytest.raises(InputError, match=r"repeats asset id\(s\) \['p'\]"):
        combine_votes(repeated, humans())


# -- real crowd votes ------------------------------------------------------------------------
def test_consensus_beats_majority_vote_on_real_dog_annotations(shared_data):
    folder = shared_data / "crowd" / "dog"
    answers = pl.read_csv(folder / "answer.csv")
    truth = pl.read_csv(folder / "truth.csv")
    rng = np.random.default_rng(0)
    questions = rng.choice(truth["question"].to_numpy(), size=400, replace=False)
    subset = answers.filter(pl.col("question").is_in(questions.tolist())).rename(
        {"question": "asset_id", "worker": "annotator", "answer": "label"}
    )
    result = consensus(subset, classes=4, random_state=0)
    gold = (
        result.per_asset.join(truth, left_on="asset_id", right_on="question", how="left")["truth"]
        .to_numpy()
        .astype(np.int64)
    )
    votes = result.matrix.votes
    majority = MajorityVote(cardinality=4).fit(votes).predict(votes)
    consensus_accuracy = float(np.mean(result.labels == gold))
    majority_accuracy = float(np.mean(majority == gold))
    assert consensus_accuracy >= majority_accuracy
    assert consensus_accuracy > 0.8
    # estimated reliability ranks annotators like their true accuracy
    answered = votes >= 0
    n = answered.sum(axis=0)
    true_accuracy = ((votes == gold[:, None]) & answered).sum(axis=0) / np.maximum(n, 1)
    keep = n >= 10
    rho = spearmanr(result.per_annotator["reliability"].to_numpy()[keep], true_accuracy[keep])
    assert rho.statistic > 0.5
    assert result.fleiss_kappa == pytest.approx(result.alpha, abs=0.01)  # 10 answers each


@pytest.mark.parametrize("seed", [0, 1])
def test_reliability_ranks_annotators_of_mixed_skill_and_spammers(seed):
    from benchmarks.label_model_robustness import scenario

    votes, truth, k = scenario("crowd", seed, n=1500)
    matrix = AnnotationMatrix(
        votes=votes.astype(np.int32),
        asset_ids=pl.Series(np.arange(len(votes))),
        annotators=pl.Series([f"w{j}" for j in range(votes.shape[1])]),
        class_names=tuple(str(c) for c in range(k)),
    )
    result = consensus(matrix, random_state=0)
    answered = votes >= 0
    accuracy = ((votes == truth[:, None]) & answered).sum(axis=0) / answered.sum(axis=0)
    reliability = result.per_annotator["reliability"].to_numpy()
    assert spearmanr(reliability, accuracy).statistic >= 0.5
    majority = MajorityVote(cardinality=k).fit(votes).predict(votes)
    assert np.mean(result.labels == truth) >= np.mean(majority == truth)


def _answers(accuracy: np.ndarray, *, n: int, per_item: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    rows, cols, labels = [], [], []
    for i in range(n):
        for j in rng.choice(accuracy.size, size=per_item, replace=False):
            rows.append(i)
            cols.append(int(j))
            labels.append(int(truth[i] if rng.random() < accuracy[j] else 1 - truth[i]))
    return pl.DataFrame({"asset_id": rows, "annotator": cols, "label": labels})


def test_reliability_ranks_annotators_or_says_it_cannot():
    # 20 annotators of known accuracy (0.55 .. 0.95) on 600 binary items, 5 answers per item
    accuracy = np.linspace(0.55, 0.95, 20)
    result = consensus(_answers(accuracy, n=600, per_item=5, seed=3), classes=2)
    reliability = result.per_annotator.sort("annotator")["reliability"].to_numpy()
    assert "reliability" not in result.notes
    assert spearmanr(reliability, accuracy).statistic > 0.8
    # 60 equally good annotators: two halves of the items rank them differently; it says so
    flat = consensus(_answers(np.full(60, 0.8), n=600, per_item=5, seed=4), classes=2)
    assert "inconsistently" in flat.notes["reliability"]
