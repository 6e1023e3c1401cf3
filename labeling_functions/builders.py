"""Declarative LFs that run vectorized over whole columns: keywords, regexes, polars expressions.

Each builder returns a frozen LF object; ``enrich.apply`` evaluates it over the column in one
polars call (multi-threaded, no Python per row). Null values never fire.

>>> import polars as pl
>>> frame = pl.DataFrame({"text": ["Check out my channel", "great song", None]})
>>> keyword_lf("check_out", ["check out"], label="SPAM").fires(frame).tolist()
[True, False, False]
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labeling_functions.core import LabelSpec, VectorizedLF
from labeling_functions.errors import LFDefinitionError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


def _string_column(frame: pl.DataFrame, column: str, lf_name: str) -> pl.Series:
    import polars as pl

    series = frame.get_column(column)
    if series.dtype not in (pl.String, pl.Categorical, pl.Enum, pl.Null):
        raise LFDefinitionError(
            f"LF {lf_name!r} reads column {column!r} as text, but its dtype is {series.dtype}; "
            "point the LF at a string column or cast it first."
        )
    return series.cast(pl.String)


def _to_mask(hits: pl.Series) -> np.ndarray:
    return hits.fill_null(False).to_numpy().astype(bool, copy=False)


@dataclass(frozen=True, kw_only=True)
class RegexLF(VectorizedLF):
    """Votes ``label`` where ``pattern`` matches anywhere in the text of ``column``.

    The pattern uses Python ``re`` syntax. It runs on polars' regex engine when that engine
    accepts it (same results, many times faster); patterns it cannot run (look-arounds,
    back-references) fall back to Python's ``re`` over the column.
    """

    pattern: str
    column: str = "text"
    ignore_case: bool = False

    def __post_init__(self) -> None:
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise LFDefinitionError(
                f"LF {self.name!r}: {self.pattern!r} is not a valid regular expression ({exc})."
            ) from exc
        super().__post_init__()

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this LF reads."""
        return (self.column,)

    def fires(self, frame: pl.DataFrame) -> np.ndarray:
        """Boolean mask ``(n_rows,)``: where the LF votes its label."""
        texts = _string_column(frame, self.column, self.name)
        return _text_mask(texts, self.match_expression(), self.pattern, self.ignore_case)

    def match_expression(self) -> pl.Expr:
        """The polars expression of :meth:`fires`.

        Evaluating it raises ``ComputeError`` where polars' regex engine cannot run the
        pattern; :meth:`fires` then falls back to Python's ``re``.
        """
        return _regex_expression(self.column, self.pattern, ignore_case=self.ignore_case)


def _regex_expression(column: str, pattern: str, *, ignore_case: bool) -> pl.Expr:
    import polars as pl

    text = pl.col(column).cast(pl.String)
    return text.str.contains(f"(?i){pattern}" if ignore_case else pattern).fill_null(False)


def _text_mask(
    texts: pl.Series, expression: pl.Expr, pattern: str, ignore_case: bool
) -> np.ndarray:
    """``expression`` over the text column ``texts``; Python ``re`` where polars cannot run it."""
    import numpy as np
    import polars as pl

    try:
        return _to_mask(texts.to_frame().select(expression).to_series())
    except pl.exceptions.ComputeError:  # syntax polars' engine lacks
        compiled = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        return np.fromiter(
            (text is not None and compiled.search(text) is not None for text in texts),
            dtype=bool,
            count=len(texts),
        )


@dataclass(frozen=True, kw_only=True)
class KeywordLF(VectorizedLF):
    """Votes ``label`` where any of ``keywords`` occurs in the text of ``column``.

    By default matching ignores case and respects word boundaries ("spam" does not match
    "spammer"); ``whole_word=False`` matches substrings.
    """

    keywords: tuple[str, ...]
    column: str = "text"
    ignore_case: bool = True
    whole_word: bool = True

    def __post_init__(self) -> None:
        keywords = (self.keywords,) if isinstance(self.keywords, str) else tuple(self.keywords)
        if not keywords or not all(isinstance(k, str) and k for k in keywords):
            raise LFDefinitionError(
                f"LF {self.name!r} needs at least one non-empty keyword string, "
                f"got {self.keywords!r}."
            )
        object.__setattr__(self, "keywords", keywords)
        super().__post_init__()

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this LF reads."""
        return (self.column,)

    @property
    def pattern(self) -> str:
        """The equivalent regular expression (Python ``re`` syntax, case handled apart)."""
        alternatives = "|".join(re.escape(k) for k in self.keywords)
        return rf"\b(?:{alternatives})\b" if self.whole_word else f"(?:{alternatives})"

    def fires(self, frame: pl.DataFrame) -> np.ndarray:
        """Boolean mask ``(n_rows,)``: where the LF votes its label."""
        texts = _string_column(frame, self.column, self.name)
        return _text_mask(texts, self.match_expression(), self.pattern, self.ignore_case)

    def match_expression(self) -> pl.Expr:
        """The polars expression of :meth:`fires`.

        An Aho-Corasick search for plain ASCII substrings, else the equivalent regular
        expression.
        """
        import polars as pl

        if self.whole_word or (self.ignore_case and not all(k.isascii() for k in self.keywords)):
            return _regex_expression(self.column, self.pattern, ignore_case=self.ignore_case)
        text = pl.col(self.column).cast(pl.String)
        hits = text.str.contains_any(list(self.keywords), ascii_case_insensitive=self.ignore_case)
        return hits.fill_null(False)


@dataclass(frozen=True, kw_only=True)
class ExpressionLF(VectorizedLF):
    """Votes ``label`` where a boolean polars expression is true (tabular thresholds, ranges...)."""

    expression: pl.Expr

    def __post_init__(self) -> None:
        import polars as pl

        if not isinstance(self.expression, pl.Expr):
            raise LFDefinitionError(
                f"LF {self.name!r}: expression must be a polars expression such as "
                f"pl.col('n_links') > 2, got {self.expression!r}."
            )
        super().__post_init__()

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this LF reads."""
        return tuple(self.expression.meta.root_names())

    def fires(self, frame: pl.DataFrame) -> np.ndarray:
        """Boolean mask ``(n_rows,)``: where the LF votes its label."""
        import polars as pl

        hits = frame.select(self.expression.alias("hits")).to_series()
        if len(hits) != frame.height or hits.dtype not in (pl.Boolean, pl.Null):
            raise LFDefinitionError(
                f"LF {self.name!r}: expression {self.expression} must give one boolean per row, "
                f"got {len(hits)} values of dtype {hits.dtype} for {frame.height} rows."
            )
        return _to_mask(hits)

    def _definition(self) -> tuple[object, ...]:
        return (self.label, self.expression.meta.serialize(format="json"))


def keyword_lf(
    name: str,
    keywords: Iterable[str] | str,
    *,
    label: LabelSpec,
    column: str = "text",
    ignore_case: bool = True,
    whole_word: bool = True,
) -> KeywordLF:
    """Make an LF that votes ``label`` when the text holds any of ``keywords``.

    >>> import polars as pl
    >>> lf = keyword_lf("subscribe", ["subscribe", "sub4sub"], label=1)
    >>> lf.fires(pl.DataFrame({"text": ["Please SUBSCRIBE!", "subscribed already"]})).tolist()
    [True, False]
    """
    return KeywordLF(
        name=name,
        label=label,
        keywords=tuple([keywords] if isinstance(keywords, str) else keywords),
        column=column,
        ignore_case=ignore_case,
        whole_word=whole_word,
    )


def regex_lf(
    name: str, pattern: str, *, label: LabelSpec, column: str = "text", ignore_case: bool = False
) -> RegexLF:
    """Make an LF that votes ``label`` where ``pattern`` (Python ``re`` syntax) matches.

    >>> import polars as pl
    >>> lf = regex_lf("link", r"https?://", label="SPAM")
    >>> lf.fires(pl.DataFrame({"text": ["see http://x.io", "no link"]})).tolist()
    [True, False]
    """
    return RegexLF(name=name, label=label, pattern=pattern, column=column, ignore_case=ignore_case)


def expression_lf(name: str, expression: pl.Expr, *, label: LabelSpec) -> ExpressionLF:
    """Make an LF that votes ``label`` where a boolean polars expression holds.

    >>> import polars as pl
    >>> lf = expression_lf("long", pl.col("text").str.len_chars() > 10, label=0)
    >>> lf.columns, lf.fires(pl.DataFrame({"text": ["short", "a much longer one"]})).tolist()
    (('text',), [False, True])
    """
    return ExpressionLF(name=name, label=label, expression=expression)
