"""The public surface of ``enrich``: ``__all__``, the lazy-export table and old module paths."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import enrich
import enrich.errors
from enrich._internal.deprecation import MOVED


def test_all_and_the_lazy_export_table_name_the_same_things():
    assert sorted(enrich.__all__) == sorted(enrich._PUBLIC)
    assert len(set(enrich.__all__)) == len(enrich.__all__)


@pytest.mark.parametrize("name", enrich.__all__)
def test_every_public_name_resolves_from_its_module(name):
    value = getattr(enrich, name)
    owner = enrich._PUBLIC[name]
    module = importlib.import_module(f"enrich.{owner or name}")
    assert value is (module if not owner else getattr(module, name))


def test_every_exception_of_the_package_is_exported_and_derives_from_enrich_error():
    exceptions = {
        name
        for name, value in vars(enrich.errors).items()
        if inspect.isclass(value) and issubclass(value, BaseException)
    }
    assert exceptions <= set(enrich.__all__)
    assert exceptions == set(enrich.errors.__all__)
    for name in exceptions:
        assert issubclass(getattr(enrich, name), enrich.EnrichError)


def test_apply_is_the_function_even_after_its_old_module_path_is_imported():
    code = (
        "import warnings; warnings.simplefilter('ignore'); import enrich, enrich.apply; "
        "import polars as pl; from labeling_functions import keyword_lf; "
        "vm = enrich.apply([keyword_lf('x', ['x'], label=1)], pl.DataFrame({'text': ['x']}),"
        " classes=2, progress=False); print(vm.votes.tolist())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[[1]]"


@pytest.mark.parametrize("old", sorted(MOVED))
def test_each_old_module_path_warns_and_gives_the_new_module(old, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=MOVED[old].replace(".", r"\.")):
        module = importlib.import_module(old)
    new = importlib.import_module(MOVED[old])
    public = getattr(new, "__all__", [])
    assert public, f"{MOVED[old]} has no __all__"
    for name in public:
        assert getattr(module, name) is getattr(new, name)


def test_old_from_imports_keep_working():
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n    from enrich.label_model import LabelModel\nexcept DeprecationWarning as w:\n"
        "    print('warned:', w)\n"
        "warnings.simplefilter('ignore')\nfrom enrich.store import RunLockedError\n"
        "from enrich.job import run_job\nimport enrich\n"
        "print(RunLockedError is enrich.RunLockedError, run_job is enrich.run_job)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "warned: enrich.label_model moved to enrich.models.label_model" in out.stdout
    assert out.stdout.strip().endswith("True True")
