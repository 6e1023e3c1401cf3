import numpy as np
import pandas as pd
import polars as pl
import pytest
from snorkel.labeling import PandasLFApplier
from snorkel.labeling import labeling_function as snorkel_lf

import enrich
from enrich import InputError, LFApplicationError, MissingColumnError
from labeling_functions import ABSTAIN, expression_lf, keyword_lf, labeling_function, regex_lf

CLASSES = ["HAM", "SPAM"]


@labeling_function(label="SPAM")
def shouting(x):
    letters = [c for c in x.text if c.isalpha()]
    return "SPAM" if letters and sum(c.isupper() for c in letters) > len(letters) / 2 else None


@labeling_function
def length_vote(x):
    return 0 if len(x.text) % 3 == 0 else (1 if len(x.text) % 3 == 1 else ABSTAIN)


@labeling_function
def fails_on_empty(x):
    return 1 if x.text[0] == "C" else ABSTAIN  # IndexError on ""


@pytest.fixture
def comments():
    texts = ["Check out MY CHANNEL", "great song", "", "Ünïcødé ☕ LOVE", "sub4sub", "ok"] * 400
    return pl.DataFrame(
        {"asset_id": [f"c{i}" for i in range(len(texts))], "text": texts, "n": range(len(texts))}
    )


def test_vote_matrix_shape_names_and_ids(comments):
    lfs = [keyword_lf("sub", ["sub4sub"], label="SPAM"), shouting, length_vote]
    vm = enrich.apply(lfs, comments, classes=CLASSES, progress=False)
    array = np.asarray(vm)
    assert array.shape == (comments.height, 3) and array.dtype == np.int32
    assert vm.lf_names == ("sub", "shouting", "length_vote")
    assert vm.asset_ids.to_list() == comments["asset_id"].to_list()
    assert vm.class_names == tuple(CLASSES)
    assert set(np.unique(array)) <= {-1, 0, 1}
    assert vm.to_polars().columns == ["asset_id", "sub", "shouting", "length_vote"]


def test_parallel_equals_serial(comments):
    lfs = [shouting, length_vote, keyword_lf("song", ["song"], label="HAM")]
    serial = enrich.apply(lfs, comments, classes=CLASSES, progress=False)
    parallel = enrich.apply(lfs, comments, classes=CLASSES, progress=False, n_jobs=2)
    np.testing.assert_array_equal(serial.votes, parallel.votes)


def test_an_lf_that_raises_stops_the_run_naming_lf_asset_and_traceback(comments):
    with pytest.raises(LFApplicationError) as info:
        enrich.apply([fails_on_empty], comments, classes=CLASSES, progress=False)
    message = str(info.value)
    assert "'fails_on_empty' raised on asset 'c2'" in message
    assert "IndexError" in message and "Original traceback" in message
    assert 'x.text[0] == "C"' in message  # the line of the LF that failed


def test_on_error_abstain_counts_errors_per_lf(comments):
    vm = enrich.apply(
        [fails_on_empty, shouting], comments, classes=CLASSES, progress=False, on_error="abstain"
    )
    errors = vm.errors.row(0, named=True)
    assert errors["lf"] == "fails_on_empty" and errors["n_errors"] == 400
    assert errors["first_error"].startswith("IndexError")
    assert errors["sample_asset_ids"] == ["c2", "c8", "c14", "c20", "c26"]
    assert (vm.votes[2::6, 0] == ABSTAIN).all() and (vm.votes[0::6, 0] == 1).all()
    assert vm.errors.height == 1  # shouting never failed


def test_errors_in_worker_processes_are_reported_the_same(comments):
    with pytest.raises(LFApplicationError, match="'fails_on_empty' raised on asset 'c2'"):
        enrich.apply([fails_on_empty], comments, classes=CLASSES, progress=False, n_jobs=2)


@pytest.mark.parametrize("answer", [2, "EGGS", 1.5, True])
def test_an_answer_that_is_not_a_class_is_an_error(answer):
    @labeling_function
    def odd(x):
        return answer

    with pytest.raises(LFApplicationError, match=r"LF 'odd' returned an invalid vote on asset 0"):
        enrich.apply([odd], pl.DataFrame({"text": ["a"]}), classes=CLASSES, progress=False)


def test_an_answer_other_than_the_declared_label_is_an_error():
    @labeling_function(label="HAM")
    def says_ham(x):
        return "SPAM"

    with pytest.raises(LFApplicationError, match="differs from its declared label 'HAM'"):
        enrich.apply([says_ham], pl.DataFrame({"text": ["a"]}), classes=CLASSES, progress=False)


def test_a_declared_label_that_is_not_a_class_fails_before_any_work():
    with pytest.raises(LFApplicationError, match=r"LF 'kw' votes for 'EGGS' is not a class"):
        enrich.apply(
            [keyword_lf("kw", ["a"], label="EGGS")], pl.DataFrame({"text": ["a"]}), classes=CLASSES
        )


def test_missing_column_is_reported_before_any_work():
    calls = []

    @labeling_function
    def records_calls(x):
        calls.append(1)
        return ABSTAIN

    @labeling_function
    def reads_title(x):
        return 1 if x.title else ABSTAIN

    data = pl.DataFrame({"text": ["a", "b"], "author": ["x", "y"]})
    with pytest.raises(MissingColumnError) as info:
        enrich.apply([records_calls, reads_title], data, classes=2, progress=False)
    assert "'title' (needed by labeling function 'reads_title')" in str(info.value)
    assert "['text', 'author']" in str(info.value)
    assert calls == []


def test_text_lfs_run_together_with_the_votes_each_gives_alone():
    """Keyword and regex LFs share one polars select; fallbacks and other columns still work."""
    data = pl.DataFrame(
        {
            "text": ["Check out my channel", "check this", None, "aa bb", "WIN £100", ""] * 50,
            "source": pl.Series(["yt", "sms", "yt", None, "sms", "yt"] * 50, dtype=pl.Categorical),
        }
    )
    lfs = [
        keyword_lf("check", ["check out", "check"], label="SPAM"),
        keyword_lf("money", ["£", "$"], label="SPAM", whole_word=False),
        keyword_lf("shout", ["WIN"], label="SPAM", ignore_case=False, whole_word=False),
        regex_lf("look_behind", r"(?<=check )(?:out|this)", label="SPAM"),  # Python re
        regex_lf("double", r"(\w)\1", label="HAM"),  # back-reference: Python re
        regex_lf("sms", r"^sms$", label="SPAM", column="source"),  # categorical column
        expression_lf("empty", pl.col("text").str.len_chars() == 0, label="HAM"),
    ]
    vm = enrich.apply(lfs, data, classes=CLASSES, progress=False)
    for j, lf in enumerate(lfs):
        alone = np.where(lf.fires(data), CLASSES.index(lf.label), ABSTAIN)
        np.testing.assert_array_equal(vm.votes[:, j], alone, err_msg=lf.name)
    assert vm.votes[:, 0].tolist()[:3] == [1, 1, -1] and vm.votes[:, 4].tolist()[3] == 0


def test_a_text_lf_on_a_numeric_column_names_the_column():
    lfs = [keyword_lf("ok", ["a"], label=1), keyword_lf("kw", ["1"], label=1, column="n")]
    with pytest.raises(LFApplicationError, match=r"column 'n' as text, but its dtype is Int64"):
        enrich.apply(lfs, pl.DataFrame({"text": ["a", "b"], "n": [1, 2]}), classes=2)


def test_nulls_empty_strings_and_unicode():
    data = pl.DataFrame({"text": ["Ünïcødé spam", "", None, "ＳＰＡＭ", "spam 🥫"]})
    vm = enrich.apply([keyword_lf("spam", ["spam", "ünïcødé"], label=1)], data, classes=2)
    assert vm.votes[:, 0].tolist() == [1, -1, -1, -1, 1]


def test_row_lfs_see_nulls_as_none():
    @labeling_function
    def is_missing(x):
        return 1 if x.text is None else 0

    data = pl.DataFrame({"text": ["a", None]})
    assert enrich.apply([is_missing], data, classes=2).votes[:, 0].tolist() == [0, 1]


def test_empty_dataset_gives_an_empty_matrix():
    data = pl.DataFrame({"text": []}, schema={"text": pl.String})
    vm = enrich.apply([keyword_lf("a", ["a"], label=1), shouting], data, classes=CLASSES)
    assert vm.votes.shape == (0, 2)
    assert vm.asset_ids.len() == 0


def test_pandas_and_arrow_inputs_match_polars(comments):
    lfs = [
        keyword_lf("sub", ["sub4sub"], label=1),
        expression_lf("even", pl.col("n") % 2 == 0, label=0),
    ]
    expected = enrich.apply(lfs, comments, classes=2).votes
    np.testing.assert_array_equal(
        enrich.apply(lfs, comments.to_pandas(), classes=2).votes, expected
    )
    np.testing.assert_array_equal(enrich.apply(lfs, comments.to_arrow(), classes=2).votes, expected)


def test_unsupported_data_type_is_refused():
    with pytest.raises(InputError, match="Expected a polars DataFrame"):
        enrich.apply([shouting], [{"text": "a"}], classes=2)


def test_duplicate_lf_names_are_refused():
    with pytest.raises(InputError, match=r"repeated: \['a'\]"):
        enrich.apply([keyword_lf("a", ["x"], label=1)] * 2, pl.DataFrame({"text": ["x"]}))


def test_bad_options_are_refused():
    data = pl.DataFrame({"text": ["x"]})
    with pytest.raises(InputError, match="on_error must be"):
        enrich.apply([shouting], data, on_error="ignore")
    with pytest.raises(InputError, match="n_jobs must be"):
        enrich.apply([shouting], data, n_jobs=0)


def test_null_asset_ids_are_refused():
    data = pl.DataFrame({"asset_id": ["a", None], "text": ["x", "y"]})
    with pytest.raises(InputError, match="null value"):
        enrich.apply([shouting], data, classes=CLASSES)


def test_snorkel_lfs_are_accepted_and_vote_like_in_snorkel(comments):
    @snorkel_lf()
    def has_song(x):
        return 0 if "song" in x.text else -1

    data = comments.head(60)
    ours = enrich.apply([has_song], data, classes=2, progress=False).votes
    theirs = PandasLFApplier([has_song]).apply(
        pd.DataFrame(data.to_dict(as_series=False)), progress_bar=False
    )
    np.testing.assert_array_equal(ours, theirs)
    parallel = enrich.apply([has_song], data, classes=2, progress=False, n_jobs=2).votes
    np.testing.assert_array_equal(parallel, theirs)
