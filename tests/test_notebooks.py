"""Every notebook's code cells run against real run records (made by a tiny training and a tiny sweep)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tiny_recognizer_ckpt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    runs_root = Path(tiny_recognizer_ckpt).parents[4]  # <runs>/demo/recognizer/<id>/checkpoints/last.ckpt
    monkeypatch.setenv("PROFACE_RUNS", str(runs_root))
    monkeypatch.chdir(path.parent)
    notebook = nbformat.read(path, as_version=4)
    namespace: dict = {"__name__": "__notebook__"}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        try:
            exec(compile(cell.source, f"{path.name}[cell {index}]", "exec"), namespace)
        except Exception as exc:  # name the failing cell
            raise AssertionError(f"{path.name} cell {index} failed: {exc!r}") from exc
    runs = namespace["runs"]
    assert len(runs) >= 1 and (runs["experiment"] == "demo/recognizer").any()
    assert os.path.isfile(Path(namespace["run"].run_dir) / "history.png")
