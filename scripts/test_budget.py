"""Test-time budget report: ``python scripts/test_budget.py [JUNIT_XML]`` (``make test-budget``).

Reads the JUnit report that ``make test`` writes (``.test-reports/junit.xml``) and prints, slowest first:

* each paper's test time: its own files (``tests/test_<paper>*.py``) plus its cases in the parametrised
  shared files (ids such as ``[proface_s/hybrid_celeba]`` or ``[proface]``). Budget: 60 s per paper;
* each test file's time. Budget: 120 s per file (the multi-process DDP and signal files are the largest);
* the whole run's wall time. Budget: 12 minutes.

Times are setup + call + teardown of each test as pytest reports them. Under ``pytest-xdist`` they are
per-worker times, so a file's time is the CPU time it takes, whichever worker ran it. Exits 1, naming each
item over budget, so drift shows early. It checks nothing inside the tests: no test asserts on its own timing.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REPORT = PROJECT_ROOT / ".test-reports" / "junit.xml"
PAPER_BUDGET_S = 60.0
FILE_BUDGET_S = 120.0
SUITE_BUDGET_S = 12 * 60.0


def paper_names() -> list[str]:
    """Registered papers: every package under ``src/papers/`` (longest first, so ``a_b`` wins over ``a``)."""
    root = PROJECT_ROOT / "src" / "papers"
    names = [p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").is_file()]
    return sorted(names, key=len, reverse=True)


def paper_of(test_file: str, test_name: str, papers: Sequence[str]) -> str | None:
    """The paper a test belongs to: by its file name, else by its parametrisation id."""
    stem = Path(test_file).stem.removeprefix("test_")
    for name in papers:
        if stem == name or stem.startswith(f"{name}_"):
            return name
    ids = re.findall(r"\[(.*)\]$", test_name)
    if ids:
        for token in re.split(r"[-,]", ids[0]):
            head = token.split("/", 1)[0]
            if head in papers:
                return head
    return None


def read_report(path: Path) -> tuple[list[tuple[str, str, float]], float]:
    """(file, test name, seconds) per test case, and the run's wall time."""
    if not path.is_file():
        raise SystemExit(f"test_budget: no test report at {path}: run `make test` first (it writes it)")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SystemExit(f"test_budget: {path} is not a JUnit XML report: {exc}") from exc
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    cases = []
    for case in root.iter("testcase"):
        module = case.get("classname", "")
        file = module.split(".")[0] + "/" + module.split(".")[1] + ".py" if "." in module else module
        cases.append((file, case.get("name", ""), float(case.get("time", 0.0))))
    wall = sum(float(s.get("time", 0.0)) for s in suites)
    return cases, wall


def report(cases: list[tuple[str, str, float]], wall: float, papers: Sequence[str]) -> list[str]:
    """Print the tables; return the items over budget."""
    per_file: dict[str, float] = defaultdict(float)
    per_paper: dict[str, float] = {name: 0.0 for name in papers}
    for file, name, seconds in cases:
        per_file[file] += seconds
        paper = paper_of(file, name, papers)
        if paper is not None:
            per_paper[paper] += seconds
    over = []
    print(f"{'paper':<28} {'seconds':>8}  budget {PAPER_BUDGET_S:.0f} s")
    for paper, seconds in sorted(per_paper.items(), key=lambda kv: -kv[1]):
        flag = "  OVER" if seconds > PAPER_BUDGET_S else ""
        print(f"{paper:<28} {seconds:8.1f}{flag}")
        if flag:
            over.append(f"paper {paper}: {seconds:.1f} s > {PAPER_BUDGET_S:.0f} s")
    print(f"\n{'test file':<44} {'seconds':>8}  budget {FILE_BUDGET_S:.0f} s")
    for file, seconds in sorted(per_file.items(), key=lambda kv: -kv[1]):
        flag = "  OVER" if seconds > FILE_BUDGET_S else ""
        print(f"{file:<44} {seconds:8.1f}{flag}")
        if flag:
            over.append(f"file {file}: {seconds:.1f} s > {FILE_BUDGET_S:.0f} s")
    total = sum(per_file.values())
    print(
        f"\n{len(cases)} tests, {total:.0f} s of test time, {wall:.0f} s wall (budget {SUITE_BUDGET_S:.0f} s)"
    )
    if wall > SUITE_BUDGET_S:
        over.append(f"whole run: {wall:.0f} s wall > {SUITE_BUDGET_S:.0f} s")
    return over


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", nargs="?", type=Path, default=DEFAULT_REPORT, help="JUnit XML of a run")
    args = parser.parse_args(argv)
    cases, wall = read_report(args.report)
    over = report(cases, wall, paper_names())
    if over:
        print("\nover budget:\n  " + "\n  ".join(over))
        return 1
    print("\nevery paper, file and the whole run are within budget")
    return 0


if __name__ == "__main__":
    if hasattr(signal, "SIGPIPE"):  # `... | head` closes the pipe early: stop quietly, as other CLIs do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
