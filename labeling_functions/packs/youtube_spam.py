"""LF pack for YouTube comment spam (the bundled UCI YouTube Spam Collection).

Mixes every kind of LF: keywords and regexes over ``text``, a tabular polars expression,
spaCy entity and token-pattern LFs, and row-wise Python LFs. Classes are ``("HAM", "SPAM")``.

>>> from labeling_functions.packs import youtube_spam
>>> youtube_spam.CLASSES, len(youtube_spam.LFS) >= 8
(('HAM', 'SPAM'), True)
"""

from __future__ import annotations

import re

import polars as pl

from labeling_functions.builders import expression_lf, keyword_lf, regex_lf
from labeling_functions.core import ABSTAIN, labeling_function
from labeling_functions.spacy_lfs import spacy_entity_lf, spacy_matcher_lf

CLASSES = ("HAM", "SPAM")

check_out = keyword_lf(
    "check_out", ["check out", "check my", "checkout", "look at my"], label="SPAM"
)
subscribe = keyword_lf("subscribe", ["subscribe", "sub4sub", "subscribers", "subs"], label="SPAM")
my_channel = keyword_lf(
    "my_channel", ["my channel", "my video", "my videos", "my music", "my page"], label="SPAM"
)
please = keyword_lf("please", ["please", "plz", "pls"], label="SPAM")
link = regex_lf("link", r"https?://|www\.|\.com\b|\.ly/", label="SPAM", ignore_case=True)
money = regex_lf(
    "money", r"\b(?:free|earn|money|\$\d+|gift ?card|giveaway)\b", label="SPAM", ignore_case=True
)
short_comment = expression_lf("short_comment", pl.col("text").str.len_chars() <= 25, label="HAM")
views = keyword_lf("views", ["views", "billion", "million"], label="HAM")
mentions_org = spacy_entity_lf("mentions_org", ["ORG"], label="SPAM")
verb_my = spacy_matcher_lf(
    "verb_my", [[{"POS": "VERB"}, {"LOWER": {"IN": ["my", "our"]}}]], label="SPAM"
)

_PROMOTION = re.compile(
    r"https?://|www\.|\.com|check|subscri|channel|\bmy\b|please|plz|free|money|follow", re.I
)
_ABOUT_THE_SONG = re.compile(r"\b(?:song|love|beautiful|voice|best|lyrics|dance)\b", re.I)


@labeling_function(label="HAM")
def about_the_song(x):
    """Comments about the song itself, without a link, are usually genuine."""
    text = x.text or ""
    if _ABOUT_THE_SONG.search(text) and "http" not in text.lower():
        return "HAM"
    return ABSTAIN


@labeling_function(label="HAM")
def no_promotion(x):
    """Short comments with no sign of promotion (links, channels, asks) are rarely spam."""
    text = x.text or ""
    return "HAM" if len(text) < 120 and not _PROMOTION.search(text) else ABSTAIN


@labeling_function(label="SPAM")
def shouting(x):
    """Long comments written mostly in capitals read like advertising."""
    letters = [c for c in (x.text or "") if c.isalpha()]
    if len(letters) >= 20 and sum(c.isupper() for c in letters) / len(letters) > 0.6:
        return "SPAM"
    return ABSTAIN


LFS = (
    check_out,
    subscribe,
    my_channel,
    please,
    link,
    money,
    short_comment,
    views,
    mentions_org,
    verb_my,
    about_the_song,
    no_promotion,
    shouting,
)
"""Every LF of the pack, in vote-matrix column order."""
