import pytest

from labeling_functions import ABSTAIN, LFDefinitionError, Row, RowLF, labeling_function
from labeling_functions.core import infer_columns


def test_decorator_bare_and_with_options():
    @labeling_function
    def bare(x):
        return 1 if x.n > 2 else ABSTAIN

    @labeling_function(name="named", label="SPAM", resources={"words": {"buy"}})
    def with_options(x, words):
        return "SPAM" if set(x.text.split()) & words else None

    assert isinstance(bare, RowLF) and bare.name == "bare" and bare.columns == ("n",)
    assert bare(Row(n=3)) == 1
    assert with_options.name == "named" and with_options.label == "SPAM"
    assert with_options(Row(text="buy now")) == "SPAM"
    assert with_options(Row(text="hello")) is None


def test_inferred_columns_cover_attribute_and_item_access():
    def lf(x):
        return 1 if x["a"] and x.b.startswith("z") and x.get("c") else -1

    assert infer_columns(lf) == ("a", "b")


def test_columns_unknown_when_the_row_is_handed_on():
    def helper(row):
        return row.text

    def lf(x):
        return 1 if helper(x) else -1

    assert infer_columns(lf) is None


def test_row_reports_missing_fields_with_the_ones_that_exist():
    with pytest.raises(AttributeError, match=r"no field 'txt'; its fields are \['text'\]"):
        Row(text="a").txt  # noqa: B018


def test_version_changes_with_source():
    @labeling_function
    def one(x):
        return 1

    @labeling_function
    def two(x):
        return 0

    assert one.version != two.version
    assert len(one.version) == 16


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_names_must_be_non_empty(bad):
    with pytest.raises(LFDefinitionError, match="non-empty string"):
        RowLF(name=bad, label=None, func=lambda x: 1)


def test_labels_must_be_classes():
    with pytest.raises(LFDefinitionError, match="class id >= 0"):
        RowLF(name="a", label=-1, func=lambda x: 1)
    with pytest.raises(LFDefinitionError, match="must be callable"):
        RowLF(name="a", label=None, func="not callable")
