"""Imports point one way: embeddings <- labeling_functions <- enrich, and inside enrich down
the layers (job and io over curation, analysis, models and labeling, over _internal)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A module may import from its own layer and the layers below it, never from a higher one.
# Layers of equal rank (labeling, models) do not import each other.
ENRICH_LAYERS = {
    "errors": 0,
    "_internal": 1,
    "votes": 2,
    "tasks": 2,
    "multilabel_votes": 2.5,  # builds on votes (VoteMatrix per label)
    "datasets": 2,
    "labeling": 3,
    "models": 3,
    "analysis": 4,
    "curation": 5,
    "io": 6,
    "job": 7,
    "demo": 8,
    "cli": 9,
}
PACKAGES = {"embeddings": 0, "labeling_functions": 1, "enrich": 2}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "enrich" or len(parts) < 2:
        return None
    return parts[1]


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_packages_import_only_the_packages_below_them(package):
    wrong = []
    for path in _modules(package):
        for module in _imports(path):
            top = module.split(".")[0]
            if top in PACKAGES and PACKAGES[top] > PACKAGES[package]:
                wrong.append(f"{path.relative_to(REPO)} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_enrich_layers_import_only_downwards():
    wrong = []
    for path in _modules("enrich"):
        relative = path.relative_to(REPO / "enrich")
        if relative.parts[0] == "__init__.py" or relative.name == "deprecation.py":
            continue  # the package's export table and the old-path aliases see everything
        own = relative.parts[0].removesuffix(".py")
        for module in _imports(path):
            layer = _layer(module)
            if layer is None or layer == own:
                continue
            if layer not in ENRICH_LAYERS:
                wrong.append(f"{relative} imports {module}, which is in no layer")
            elif ENRICH_LAYERS[layer] >= ENRICH_LAYERS[own]:
                wrong.append(f"{relative} ({own}) imports {module} ({layer})")
    assert not wrong, "\n".join(wrong)
