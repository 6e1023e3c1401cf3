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
import builtins
import functools
import hashlib
import inspect
import json
import sys
import sysconfig
import textwrap
import types
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

from labeling_functions.errors import LFDefinitionError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

ABSTAIN: Final = -1
"""The vote of an LF that does not decide: ``-1`` in every vote matrix."""

Label = int | str


@dataclass(frozen=True)
class Against:
    """A vote against a label of a multi-label task: the asset does not have ``label``.

    Use it as an LF's ``label`` (``keyword_lf(..., label=Against("promotion"))``) or in a
    row-wise LF's answer (``return Against("even")``). Single-label tasks refuse it.

    >>> Against("even")
    Against('even')
    >>> label_targets(("even", Against("closed_loop")))
    (('even', 1), ('closed_loop', -1))
    """

    label: Label

    def __post_init__(self) -> None:
        if isinstance(self.label, bool) or not isinstance(self.label, int | str):
            raise LFDefinitionError(
                f"Against(...) takes a label name (str) or id (int), got {self.label!r}."
            )

    def __repr__(self) -> str:
        return f"Against({self.label!r})"


LabelSpec = Label | Against | tuple[Label | Against, ...]
"""What an LF declares it votes: a label, ``Against(label)``, or a tuple of them (multi-label)."""


def label_targets(spec: object) -> tuple[tuple[Label, int], ...]:
    """Return the ``(label, +1 | -1)`` pairs an LF's declared ``label`` (or answer) votes.

    ``+1`` votes for the label, ``-1`` against it (:class:`Against`); a tuple votes for or
    against each of its members. Raises :class:`LFDefinitionError` for anything else.

    >>> label_targets("even"), label_targets(Against(3))
    ((('even', 1),), ((3, -1),))
    """
    members = spec if isinstance(spec, tuple) else (spec,)
    targets: list[tuple[Label, int]] = []
    for member in members:
        if isinstance(member, Against):
            targets.append((member.label, -1))
        elif isinstance(member, int | str) and not isinstance(member, bool):
            targets.append((member, 1))
        else:
            raise LFDefinitionError(
                f"{member!r} is not a label: use a label name (str) or id (int), "
                "Against(label), or a tuple of them."
            )
    if not targets:
        raise LFDefinitionError("An LF's label tuple must name at least one label.")
    return tuple(targets)


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
    label: LabelSpec | None
    _nonce: str = field(init=False, compare=False, repr=False, default="")

    kind: ClassVar[str] = "base"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise LFDefinitionError(
                f"An LF name must be a non-empty string, got {self.name!r}: pass name='...'."
            )
        if isinstance(self.label, Against | tuple):  # a multi-label vote
            try:
                targets = label_targets(self.label)
            except LFDefinitionError as exc:
                raise LFDefinitionError(f"LF {self.name!r}: {exc}") from None
            for target, _ in targets:
                _check_class_label(self.name, target)
        elif self.label is not None and not isinstance(self.label, int | str):
            raise LFDefinitionError(
                f"LF {self.name!r}: label must be a class name (str) or id (int), "
                f"got {self.label!r} of type {type(self.label).__name__}."
            )
        else:
            _check_class_label(self.name, self.label)
        object.__setattr__(self, "_nonce", uuid.uuid4().hex[:8])

    @property
    def version(self) -> str:
        """A short hash of everything this LF computes from, recomputed on each access.

        It covers the LF's definition and, for row-wise LFs, the helpers its function calls
        (recursively, in user code), the module constants and closure values it reads, its
        default arguments, its ``resources`` and the models it uses (spaCy pipeline name and
        version, an encoder's id). When part of that cannot be hashed the version ends in
        ``"~"`` plus a token unique to this LF object (see :attr:`version_stable`), so a
        nightly job re-runs the LF rather than trusting old votes.
        """
        return self._version_and_notes()[0]

    @property
    def version_notes(self) -> tuple[str, ...]:
        """What could not be hashed into :attr:`version` (empty when it is stable)."""
        return self._version_and_notes()[1]

    @property
    def version_stable(self) -> bool:
        """True when :attr:`version` covers everything the LF depends on."""
        return is_stable_version(self.version)

    def _version_and_notes(self) -> tuple[str, tuple[str, ...]]:
        hasher = _DependencyHasher()
        definition = hasher.describe(self._definition(), where=self.name)
        digest = definition_hash(type(self).__name__, definition)
        if hasher.notes:
            return f"{digest}~{self._nonce}", tuple(hasher.notes)
        return digest, ()

    @property
    def columns(self) -> tuple[str, ...]:
        """The data columns this LF reads."""
        raise NotImplementedError

    def _definition(self) -> tuple[object, ...]:
        """The values that define what this LF computes (hashed into ``version``)."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.init and f.name != "name")


def _check_class_label(name: str, label: object) -> None:
    if isinstance(label, int) and label < 0:
        raise LFDefinitionError(
            f"LF {name!r}: label must be a class id >= 0, got {label}; "
            "an LF abstains by not firing, it never votes ABSTAIN."
        )


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
        return self.votes_where(self.fires(frame), to_id)

    def votes_where(self, fired: np.ndarray, to_id: Callable[[object], int]) -> np.ndarray:
        """The votes of :meth:`votes` for a mask ``fired`` computed elsewhere.

        (``enrich.apply`` evaluates the masks of many keyword and regex LFs at once.)
        """
        import numpy as np

        return np.where(fired, to_id(self.label), ABSTAIN).astype(np.int32)

    def label_votes(
        self, frame: pl.DataFrame, to_id: Callable[[object], int], n_labels: int
    ) -> np.ndarray:
        """Return int8 votes (n_rows, n_labels) for a multi-label task: +1 for, -1 against, 0.

        ``to_id`` turns a label name or id into the task's label id (and raises for others).
        By default the LF casts its declared votes (:func:`label_targets` of ``label``) on the
        rows where :meth:`fires`.
        """
        self._require_label()
        return self.label_votes_where(self.fires(frame), to_id, n_labels)

    def label_votes_where(
        self, fired: np.ndarray, to_id: Callable[[object], int], n_labels: int
    ) -> np.ndarray:
        """The votes of :meth:`label_votes` for a mask ``fired`` computed elsewhere."""
        import numpy as np

        self._require_label()
        out = np.zeros((len(fired), n_labels), dtype=np.int8)
        for target, polarity in label_targets(self.label):
            out[fired, to_id(target)] = polarity
        return out

    def _require_label(self) -> None:
        if self.label is None:
            raise LFDefinitionError(
                f"LF {self.name!r} declares no label, so it cannot vote in a multi-label task; "
                "pass label=... (a label, Against(label) or a tuple of them)."
            )


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


def is_stable_version(version: str) -> bool:
    """Return True when an LF version covers everything the LF depends on.

    Versions of LFs with a dependency that could not be hashed end in ``"~<token>"``; a job
    treats such an LF as changed on every run.

    >>> is_stable_version("0123456789abcdef"), is_stable_version("0123456789abcdef~1a2b3c4d")
    (True, False)
    """
    return "~" not in version


_MAX_DEPTH: Final = 12
_MAX_ITEMS: Final = 2_000_000
_PRIMITIVES: Final = (type(None), bool, int, float, complex, str, bytes)
_OWN_PACKAGES: Final = frozenset({"embeddings", "labeling_functions", "enrich"})


@functools.cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    return tuple(str(Path(root).resolve()) for root in roots if root)


def _is_library_module(module_name: str | None, file: str | None = None) -> bool:
    """True for the standard library and installed packages; False for the user's own code.

    ``file`` (a function's code file) decides for modules that are not in ``sys.modules``,
    e.g. an LF file the job imported under a private name; unknown code counts as the user's.
    """
    if not module_name or module_name == "__main__":
        return False
    if module_name.split(".")[0] in _OWN_PACKAGES:
        return True
    module = sys.modules.get(module_name)
    if module is not None:
        file = getattr(module, "__file__", None)
        if file is None:  # built into the interpreter
            return True
    if file is None or file.startswith("<"):
        return False
    try:
        resolved = str(Path(file).resolve())
    except OSError:
        return False
    return resolved.startswith(_library_roots())


@functools.cache
def _package_version(module_name: str) -> str:
    from importlib import metadata

    top = module_name.split(".")[0]
    module = sys.modules.get(top)
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        names = metadata.packages_distributions().get(top, [])
        return metadata.version(names[0]) if names else sys.version.split()[0]
    except (metadata.PackageNotFoundError, ValueError):
        return "unknown"


def spacy_model_identity(model: str) -> tuple[str, ...]:
    """Return the name, version and language of an installed spaCy pipeline, without loading it.

    ``model`` is a package name or a pipeline folder; an unknown model gives ``("missing",
    model)`` (loading it will then fail with a clear error).
    """
    import importlib.util

    folder = Path(model)
    if not (folder / "meta.json").is_file():
        try:
            spec = importlib.util.find_spec(model) if model.isidentifier() else None
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            return ("missing", model)
        folder = Path(next(iter(spec.submodule_search_locations)))
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ("unreadable", model)
    return (
        str(meta.get("lang")),
        str(meta.get("name")),
        str(meta.get("version")),
        str(meta.get("spacy_version")),
    )


class _DependencyHasher:
    """Turns what an LF depends on into a canonical, repr-able structure.

    Functions are described by their source plus what their code reads: the globals and
    module attributes it names, closure cells, default arguments, and, recursively, the user
    functions and classes among them. Library code is described by module, name and package
    version. Whatever has no stable description is noted in :attr:`notes`.
    """

    def __init__(self) -> None:
        self.notes: list[str] = []
        self._items = 0
        self._active: set[int] = set()

    def _note(self, where: str, why: str) -> str:
        note = f"{where}: {why}"
        if note not in self.notes:
            self.notes.append(note)
        return "<unhashable>"

    def describe(self, value: Any, *, where: str, depth: int = 0) -> Any:
        self._items += 1
        if self._items > _MAX_ITEMS:
            return self._note(where, "too many values to hash")
        if depth > _MAX_DEPTH:
            return self._note(where, "nested too deeply to hash")
        if isinstance(value, _PRIMITIVES):
            return (type(value).__name__, value)
        if isinstance(value, Enum):
            return ("enum", type(value).__qualname__, value.name)
        key = id(value)
        if key in self._active:  # a cycle: the outer description covers it
            return ("cycle", type(value).__qualname__)
        self._active.add(key)
        try:
            return self._describe_object(value, where=where, depth=depth + 1)
        finally:
            self._active.discard(key)

    def _sorted(self, items: Iterable[Any], *, where: str, depth: int) -> tuple[Any, ...]:
        return tuple(sorted((self.describe(v, where=where, depth=depth) for v in items), key=repr))

    def _describe_object(self, value: Any, *, where: str, depth: int) -> Any:
        kind = type(value)
        module = kind.__module__ or ""
        if isinstance(value, list | tuple):
            return (kind.__name__, tuple(self.describe(v, where=where, depth=depth) for v in value))
        if isinstance(value, set | frozenset):
            return (kind.__name__, self._sorted(value, where=where, depth=depth))
        if isinstance(value, Mapping):
            pairs = (
                (
                    self.describe(k, where=where, depth=depth),
                    self.describe(v, where=where, depth=depth),
                )
                for k, v in value.items()
            )
            return ("mapping", tuple(sorted(pairs, key=repr)))
        if isinstance(value, types.FunctionType):
            return self._function(value, where=where, depth=depth)
        if isinstance(value, types.MethodType):
            return (
                "method",
                self.describe(value.__self__, where=where, depth=depth),
                self.describe(value.__func__, where=where, depth=depth),
            )
        if isinstance(value, functools.partial):
            return (
                "partial",
                self.describe(value.func, where=where, depth=depth),
                self.describe(value.args, where=where, depth=depth),
                self.describe(value.keywords, where=where, depth=depth),
            )
        if isinstance(value, types.BuiltinFunctionType | types.BuiltinMethodType):
            owner = getattr(value, "__self__", None)
            if owner is not None and not isinstance(owner, types.ModuleType):
                return (
                    "bound-builtin",
                    value.__name__,
                    self.describe(owner, where=where, depth=depth),
                )
            home = getattr(value, "__module__", None) or "builtins"
            return ("builtin", home, value.__qualname__, _package_version(home))
        if isinstance(value, types.ModuleType):
            return ("module", value.__name__, _package_version(value.__name__))
        if isinstance(value, type):
            return self._class(value, where=where, depth=depth)
        if isinstance(value, types.CodeType):
            return ("code", value.co_code, self.describe(value.co_consts, where=where, depth=depth))
        if module == "re" and kind.__name__ == "Pattern":
            return ("regex", value.pattern, value.flags)
        if isinstance(value, LabelingFunction):
            return (
                "lf",
                kind.__qualname__,
                self.describe(value._definition(), where=where, depth=depth),
            )
        if module.startswith("numpy") and hasattr(value, "tobytes") and hasattr(value, "dtype"):
            return self._array(value, where=where, depth=depth)
        if module.startswith("polars"):
            return self._polars(value, where=where)
        if module.startswith("pandas") and hasattr(value, "to_numpy") and hasattr(value, "index"):
            import pandas as pd

            rows = pd.util.hash_pandas_object(value, index=True).to_numpy()
            columns = tuple(map(str, getattr(value, "columns", ())))
            return ("pandas", kind.__name__, columns, hashlib.sha256(rows.tobytes()).hexdigest())
        if module.startswith("spacy.") and hasattr(value, "meta") and hasattr(value, "pipe_names"):
            meta = value.meta
            return (
                "spacy",
                meta.get("lang"),
                meta.get("name"),
                meta.get("version"),
                tuple(value.pipe_names),
            )
        if module.startswith("embeddings.") and callable(getattr(value, "encode", None)):
            return ("encoder", kind.__qualname__, str(value.id))
        if (
            hasattr(value, "state_dict")
            and callable(value.state_dict)
            and module.startswith(("torch", "sentence_transformers", "transformers"))
        ):
            from embeddings.encoder import hash_state_dict

            return ("torch-module", kind.__qualname__, hash_state_dict(value))
        if isinstance(value, Path):
            return ("path", str(value))
        state = getattr(value, "__dict__", None)
        slots = [
            name
            for klass in kind.__mro__
            for name in getattr(klass, "__slots__", ())
            if isinstance(name, str) and hasattr(value, name)
        ]
        if isinstance(state, dict) or slots:
            attributes = dict(state or {})
            attributes.update({name: getattr(value, name) for name in slots})
            attributes = {
                k: v for k, v in attributes.items() if k not in ("__weakref__", "__dict__")
            }
            return (
                "object",
                self._class(kind, where=where, depth=depth),
                self.describe(attributes, where=f"{where} -> {kind.__qualname__}", depth=depth),
            )
        if _is_library_module(module):
            name = getattr(value, "__name__", None)
            if isinstance(name, str):  # numpy ufuncs and similar named library objects
                return ("library-object", module, kind.__qualname__, name, _package_version(module))
            text = repr(value)
            if " at 0x" not in text:
                return ("library-value", module, kind.__qualname__, text)
        return self._note(where, f"a {module}.{kind.__qualname__} value has no stable form to hash")

    def _array(self, value: Any, *, where: str, depth: int) -> Any:
        if value.dtype.kind == "O":
            return (
                "ndarray-object",
                value.shape,
                self.describe(value.tolist(), where=where, depth=depth),
            )
        data = value.tobytes() if hasattr(value, "shape") else bytes(value.tobytes())
        shape = getattr(value, "shape", ())
        return ("ndarray", shape, value.dtype.str, hashlib.sha256(data).hexdigest())

    def _polars(self, value: Any, *, where: str) -> Any:
        import io

        import polars as pl

        if isinstance(value, pl.Expr):
            return ("polars-expr", value.meta.serialize(format="json"))
        if isinstance(value, pl.Series):
            value = value.to_frame()
        if isinstance(value, pl.DataFrame):
            buffer = io.BytesIO()
            value.write_ipc(buffer)
            return ("polars-frame", hashlib.sha256(buffer.getvalue()).hexdigest())
        if isinstance(value, pl.DataType | type):
            return ("polars-type", repr(value))
        return self._note(where, f"a polars {type(value).__qualname__} has no stable form to hash")

    def _class(self, klass: type, *, where: str, depth: int) -> Any:
        if _is_library_module(klass.__module__):
            return (
                "class",
                klass.__module__,
                klass.__qualname__,
                _package_version(klass.__module__),
            )
        members = {
            name: member
            for name, member in vars(klass).items()
            if not (name.startswith("__") and name.endswith("__"))
            or name in ("__init__", "__call__", "__post_init__")
        }
        return (
            "user-class",
            klass.__qualname__,
            self._source(klass),
            tuple(
                self._class(base, where=where, depth=depth)
                for base in klass.__bases__
                if base is not object
            ),
            self.describe(members, where=f"{where} -> {klass.__qualname__}", depth=depth),
        )

    def _source(self, obj: Any) -> str:
        try:
            return definition_hash(textwrap.dedent(inspect.getsource(obj)))
        except (OSError, TypeError):
            return ""

    def _function(self, func: types.FunctionType, *, where: str, depth: int) -> Any:
        wrapped = getattr(func, "__wrapped__", None)
        if wrapped is not None and wrapped is not func:
            inner = self.describe(wrapped, where=where, depth=depth)
        else:
            inner = None
        if _is_library_module(func.__module__, func.__code__.co_filename):
            return (
                "function",
                func.__module__,
                func.__qualname__,
                _package_version(func.__module__),
                inner,
            )
        here = f"{where} -> {func.__qualname__}"
        code = func.__code__
        source = self._source(func)
        if not source:  # no source file (exec, a deleted file): the bytecode and constants
            source = definition_hash(code.co_code, repr(_code_constants(code)))
        names = _global_names(code)
        namespace = func.__globals__
        read: dict[str, Any] = {}
        for name in sorted(names):
            if name in namespace:
                target = namespace[name]
                if isinstance(target, types.ModuleType) and not _is_library_module(target.__name__):
                    attributes = {
                        a: getattr(target, a) for a in sorted(names) if hasattr(target, a)
                    }
                    read[name] = (
                        "user-module",
                        target.__name__,
                        self.describe(attributes, where=here, depth=depth),
                    )
                else:
                    read[name] = self.describe(target, where=here, depth=depth)
            elif not hasattr(builtins, name):
                read[name] = ("undefined",)
        cells = {}
        for name, cell in zip(code.co_freevars, func.__closure__ or (), strict=False):
            try:
                cells[name] = self.describe(cell.cell_contents, where=here, depth=depth)
            except ValueError:  # an empty cell (assigned later)
                cells[name] = ("empty-cell",)
        return (
            "user-function",
            func.__qualname__,
            source,
            inner,
            self.describe(func.__defaults__, where=here, depth=depth),
            self.describe(func.__kwdefaults__, where=here, depth=depth),
            tuple(sorted(read.items())),
            tuple(sorted(cells.items())),
        )


def _code_objects(code: types.CodeType) -> Iterable[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _code_constants(code: types.CodeType) -> tuple[object, ...]:
    return tuple(
        c
        for inner in _code_objects(code)
        for c in inner.co_consts
        if not isinstance(c, types.CodeType)
    )


def _global_names(code: types.CodeType) -> set[str]:
    """Names a function's code (and the code nested in it) looks up: globals and attributes."""
    return {name for inner in _code_objects(code) for name in inner.co_names}


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
        return (self.label, self.func, self.columns_read, dict(self.resources))


def labeling_function(
    func: Callable[..., object] | None = None,
    *,
    name: str | None = None,
    label: LabelSpec | None = None,
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
