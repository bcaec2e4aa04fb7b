"""Execute the analysis notebooks against a runs folder and save the executed copies outside ``notebooks/``.

``make notebooks`` runs this: each ``notebooks/*.ipynb`` runs top to bottom in the project's Jupyter kernel
(``proface-lab``, the ``.venv`` interpreter) with ``PROFACE_RUNS`` pointing at the runs folder; the executed
copy, with every table and figure, is written to ``reports/notebooks/<name>.ipynb`` (git-ignored) so the
notebooks under version control stay free of outputs. A failing cell stops with its error and exit code 1.

    python scripts/run_notebooks.py [--runs runs] [--out reports/notebooks] [--kernel proface-lab]
                                    [--notebook 04-privacy.ipynb ...]

``--notebook`` (repeatable, a name or a glob such as ``'0[4-7]-*'``) runs only those notebooks.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]


def execute(path: Path, out_dir: Path, kernel: str, timeout_s: int) -> Path:
    """Run one notebook (working directory: its folder) and write the executed copy into ``out_dir``."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, kernel_name=kernel, timeout=timeout_s, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / path.name
    nbformat.write(notebook, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=os.environ.get("PROFACE_RUNS", str(ROOT / "runs")))
    parser.add_argument("--out", default=str(ROOT / "reports" / "notebooks"))
    parser.add_argument("--kernel", default="proface-lab", help="Jupyter kernel name (default: proface-lab)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may run (default: 600)")
    parser.add_argument(
        "--notebook",
        action="append",
        default=None,
        help="run only this notebook (a file name or glob under notebooks/; repeatable; default: all)",
    )
    args = parser.parse_args(argv)
    runs = Path(args.runs)
    if not runs.is_dir():
        print(f"error: runs folder not found: {runs} (run something first: make demo)", file=sys.stderr)
        return 2
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for pattern in args.notebook or []:
        if not any(fnmatch.fnmatchcase(p.name, pattern) for p in notebooks):
            names = ", ".join(p.name for p in notebooks)
            print(f"error: no notebook matches {pattern!r} (notebooks/: {names})", file=sys.stderr)
            return 2
    if args.notebook:
        notebooks = [p for p in notebooks if any(fnmatch.fnmatchcase(p.name, pt) for pt in args.notebook)]
    os.environ["PROFACE_RUNS"] = str(runs.resolve())  # the kernel inherits it
    for path in notebooks:
        print(f"executing {path.relative_to(ROOT)} on {runs} ...", flush=True)
        try:
            target = execute(path, Path(args.out), args.kernel, args.timeout)
        except CellExecutionError as exc:
            print(f"error: {path.name} failed:\n{exc}", file=sys.stderr)
            return 1
        print(f"  executed copy: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
