"""What a labeling function is: the base class, ``ABSTAIN``, and row-wise LFs.

A labeling function (LF) looks at one asset and votes for a class or abstains. Here an LF is a
small frozen object holding plain data: its ``name``, the class it votes for (``label``, a class
name or id), the columns it reads, and a ``version`` that changes whenever its definition does
(used for lineage and incremental runs). Three kinds exist:

- vectorized LFs (:class:`VectorizedLF`) decide for a whole column at once;
- spaCy LFs (:class:`labeling_functions.spacy_lfs.SpacyLF`) decide from parsed documents that
  are shared between every spaCy LF of one pipeline;
- row-wise LFs (:class:`RowLF`, made with :func:`labeling_function`) are plain Python functions
  called once per asset, the way Snorkel users write them.

``enrich.apply`` runs all three kinds and builds the vote matrix.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Final

from labeling_functions.errors import LFDefinitionError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

ABSTAIN: Final = -1
"""The vote of an LF that does not decide: ``-1`` in every vote matrix."""

Label = int | str


def definition_hash(*parts: object) -> str:
    """Return a short, stable hash of the parts that define an LF.

    >>> definition_hash("keyword", ("spam",)) == definition_hash("keyword", ("spam",))
    True
    """
    digest = hashlib.sha256(repr(parts).encode("utf-8"))
    return digest.hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class LabelingFunction:
    """Base of every labeling function: a name, the class it votes for, and a version.

    Subclasses are frozen dataclasses; their fields are the whole definition, so two LFs with
    equal fields are interchangeable and share a ``version``.
    """

    name: str
    label: Label | None
    version: str = field(init=False, compare=False, repr=False)

    kind: ClassVar[str] = "base"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise LFDefinitionError(
                f"An LF name must be a non-empty string, got {self.name!r}: pass name='...'."
            )
        if self.label is not None and not isinstance(self.label, int | str):
            raise LFDefinitionError(
                f"LF {self.name!r}: label must be a class name (str) or id (int), "
                f"got {self.label!r} of type {type(self.label).__name__}."
            )
        if isinstance(self.label, int) and self.label < 0:
            raise LFDefinitionError(
                f"LF {self.name!r}: label must be a class id >= 0, got {self.label}; "
                "an LF abstains by not firing, it never votes ABSTAIN."
            )
        object.__setattr__(
            self, "version", definition_hash(type(self).__name__, *self._definition())
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """The data columns this LF reads."""
        raise NotImplementedError

    def _definition(self) -> tuple[object, ...]:
        """The values that define what this LF computes (hashed into ``version``)."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.init and f.name != "name")


@dataclass(frozen=True, kw_only=True)
class VectorizedLF(LabelingFunction):
    """An LF that decides for a whole table at once.

    Most vectorized LFs vote one class (``label``) and implement :meth:`fires`; LFs that may
    vote any class (``label=None``, e.g. nearest-neighbour LFs) override :meth:`votes`.
    """

    kind: ClassVar[str] = "vectorized"

    def fires(self, frame: pl.DataFrame) -> np.ndarray:
        """Return a bool array (n_rows,): True where the LF votes ``label``; nulls never fire."""
        raise NotImplementedError

    def votes(self, frame: pl.DataFrame, to_id: Callable[[object], int]) -> np.ndarray:
        """Return an int array (n_rows,) of class ids, -1 where the LF abstains.

        ``to_id`` turns a class name or id into the task's class id (and raises for others).
        """
        import numpy as np

        return np.where(self.fires(frame), to_id(self.label), ABSTAIN).astype(np.int32)


class Row(dict):
    """One asset handed to a row-wise LF: read fields as ``x.text`` or ``x["text"]``.

    >>> x = Row(text="hello", n_links=2)
    >>> x.text, x["n_links"]
    ('hello', 2)
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"This asset has no field {name!r}; its fields are {sorted(self)}."
            ) from None


_DICT_ATTRIBUTES = frozenset(dir(dict))


def infer_columns(func: Callable[..., object]) -> tuple[str, ...] | None:
    """Return the fields a row-wise LF reads from its argument, or None if unknown.

    Looks for ``x.field`` and ``x["field"]`` in the function's source, where ``x`` is its
    first parameter.

    >>> def lf(x):
    ...     return 1 if "http" in x.text and x["n_links"] > 1 else -1
    >>> infer_columns(lf)
    ('n_links', 'text')
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return None
    definition = next(
        (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.Lambda)), None
    )
    if definition is None or not definition.args.args:
        return None
    argument = definition.args.args[0].arg
    found: set[str] = set()
    for node in ast.walk(definition):
        if isinstance(node, ast.Attribute) and _is_name(node.value, argument):
            if node.attr not in _DICT_ATTRIBUTES:
                found.add(node.attr)
        elif isinstance(node, ast.Subscript) and _is_name(node.value, argument):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                found.add(key.value)
            else:
                return None  # computed keys: the fields cannot be known ahead
        elif isinstance(node, ast.Call) and _passes_argument_on(node, argument):
            return None  # the row is handed to other code that may read any field
    return tuple(sorted(found))


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _passes_argument_on(call: ast.Call, argument: str) -> bool:
    values = [*call.args, *(k.value for k in call.keywords)]
    return any(_is_name(v, argument) for v in values)


def source_hash(func: Callable[..., object]) -> str:
    """Hash a function's source (or, without source, its bytecode) for versioning.

    Wrappers are followed through ``__wrapped__`` to the function they wrap.
    """
    func = inspect.unwrap(func)
    try:
        text = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        code = getattr(func, "__code__", None)
        text = repr((code.co_code, code.co_consts)) if code is not None else repr(func)
    return definition_hash(text)


@dataclass(frozen=True, kw_only=True)
class RowLF(LabelingFunction):
    """A row-wise LF: ``func(x)`` is called once per asset and returns its vote.

    ``func`` returns a class id, a class name, ``ABSTAIN`` (-1) or None (abstain). When
    ``label`` is set, any other class returned is an error. ``resources`` are passed to
    ``func`` as keyword arguments. ``columns_read`` lists the fields it reads (None: unknown,
    every column is passed), so a missing column is reported before any work.
    """

    func: Callable[..., object]
    columns_read: tuple[str, ...] | None = None
    resources: Mapping[str, object] = field(default_factory=dict)

    kind: ClassVar[str] = "row"

    def __post_init__(self) -> None:
        if not callable(self.func):
            raise LFDefinitionError(f"LF {self.name!r}: func must be callable, got {self.func!r}.")
        super().__post_init__()

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this LF reads."""
        return self.columns_read or ()

    def __call__(self, x: Mapping[str, object]) -> object:
        """Vote on one asset ``x``: a class, or ``ABSTAIN``."""
        return self.func(x, **self.resources)

    def _definition(self) -> tuple[object, ...]:
        resources = tuple(sorted((k, repr(v)) for k, v in self.resources.items()))
        return (self.label, source_hash(self.func), self.columns_read, resources)


def labeling_function(
    func: Callable[..., object] | None = None,
    *,
    name: str | None = None,
    label: Label | None = None,
    columns: Iterable[str] | None = None,
    resources: Mapping[str, object] | None = None,
) -> RowLF | Callable[[Callable[..., object]], RowLF]:
    """Turn a Python function of one asset into a row-wise labeling function.

    Works bare (``@labeling_function``) or with options (``@labeling_function(label="SPAM")``).
    ``columns`` defaults to the fields the function's source reads (``x.text``, ``x["text"]``).

    >>> @labeling_function(label="SPAM")
    ... def check_out(x):
    ...     return "SPAM" if "check out" in x.text.lower() else ABSTAIN
    >>> check_out.name, check_out.columns, check_out(Row(text="Check out my channel"))
    ('check_out', ('text',), 'SPAM')
    """

    def wrap(f: Callable[..., object]) -> RowLF:
        return RowLF(
            name=name or f.__name__,
            label=label,
            func=f,
            columns_read=tuple(columns) if columns is not None else infer_columns(f),
            resources=dict(resources or {}),
        )

    return wrap(func) if func is not None else wrap
