"""The test-budget report: attribution of test time to papers and files, and its verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.test_budget import main, paper_of, read_report

PAPERS = ["proface_s", "proface", "faceshield"]  # longest first, as paper_names() returns them


@pytest.mark.parametrize(
    ("file", "name", "paper"),
    [
        ("tests/test_proface_s.py", "test_inverse", "proface_s"),
        ("tests/test_proface.py", "test_x", "proface"),
        ("tests/test_proface_network.py", "test_x", "proface"),
        (
            "tests/test_experiments.py",
            "test_fast_dev_run_every_experiment[proface_s/hybrid_celeba]",
            "proface_s",
        ),
        ("tests/test_papers.py", "test_paper_builds_and_takes_a_step[faceshield]", "faceshield"),
        ("tests/test_experiments.py", "test_fast_dev_run_every_experiment[demo/recognizer]", None),
        ("tests/test_metrics_identity.py", "test_roc", None),
    ],
)
def test_tests_are_attributed_to_their_paper(file: str, name: str, paper: str | None) -> None:
    assert paper_of(file, name, PAPERS) == paper


def _junit(path: Path, cases: list[tuple[str, str, float]], wall: float) -> Path:
    rows = "".join(f'<testcase classname="{c}" name="{n}" time="{t}"/>' for c, n, t in cases)
    path.write_text(f'<testsuites><testsuite name="pytest" time="{wall}">{rows}</testsuite></testsuites>')
    return path


def test_report_passes_within_budget_and_fails_over_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fine = _junit(tmp_path / "fine.xml", [("tests.test_proface", "test_a", 20.0)], wall=100.0)
    assert read_report(fine) == ([("tests/test_proface.py", "test_a", 20.0)], 100.0)
    assert main([str(fine)]) == 0
    slow = _junit(
        tmp_path / "slow.xml",
        [("tests.test_proface", "test_a", 40.0), ("tests.test_train", "test_run[proface/demo]", 30.0)],
        wall=100.0,
    )
    assert main([str(slow)]) == 1
    assert "paper proface: 70.0 s > 60 s" in capsys.readouterr().out


def test_missing_report_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="run `make test` first"):
        main([str(tmp_path / "none.xml")])


def test_covering_subset_shows_every_value_of_every_axis_once_at_least() -> None:
    """The default tests build a covering subset of a paper-scale grid: every dataset, obfuscator and
    recognizer of the grid must still be built by some file."""
    from itertools import product

    from tests.helpers import covering_subset

    grid = [f"p/released/{d}/{o}/{r}" for d, o, r in product("abc", "wxyz", ["R1", "R2", "R3", "R4", "R5"])]
    chosen = covering_subset(grid)
    assert len(chosen) == 5  # as many as the longest axis, not 60
    for depth in range(5):
        assert {name.split("/")[depth] for name in chosen} == {name.split("/")[depth] for name in grid}
    assert covering_subset(grid) == chosen  # deterministic
