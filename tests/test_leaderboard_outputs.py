"""The leaderboard's Pareto front (against a brute-force reference), its figures and its output files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from src.leaderboarding.outputs import FILE_NAMES, write_leaderboard
from src.leaderboarding.pareto import epsilon_plot, pareto_front, pareto_plot

NAN = math.nan


def _brute_front(status: list[str], p: list[float], u: list[float], higher: bool) -> list[bool]:
    """O(n²) reference: an eligible row is on the front unless another eligible row dominates it."""
    sign = 1.0 if higher else -1.0

    def eligible(i: int) -> bool:
        return status[i] == "ok" and math.isfinite(p[i]) and math.isfinite(u[i])

    out = []
    for i in range(len(p)):
        if not eligible(i):
            out.append(False)
            continue
        dominated = False
        for j in range(len(p)):
            if j == i or not eligible(j):
                continue
            uj, ui = sign * u[j], sign * u[i]
            if p[j] >= p[i] and uj >= ui and (p[j] > p[i] or uj > ui):
                dominated = True
                break
        out.append(not dominated)
    return out


def _random_table(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Values on a coarse grid (many ties), with NaN, inf and rows that are not ok."""
    p = rng.integers(0, 6, n) / 5.0
    u = rng.integers(0, 6, n) / 5.0
    p[rng.random(n) < 0.15] = NAN
    u[rng.random(n) < 0.15] = NAN
    u[rng.random(n) < 0.05] = math.inf
    status = np.where(rng.random(n) < 0.15, "failed: boom", "ok")
    index = rng.permutation(n) + 100  # a non-default index must be kept
    return pd.DataFrame({"status": status, "privacy": p, "LPIPS": u, "SSIM": u}, index=index)


@pytest.mark.parametrize("higher", [True, False])
def test_pareto_front_matches_brute_force(higher: bool) -> None:
    rng = np.random.default_rng(7 if higher else 8)
    for trial in range(60):
        table = _random_table(rng, int(rng.integers(0, 30)))
        got = pareto_front(table, "privacy", "SSIM", higher_utility_is_better=higher)
        expected = _brute_front(list(table["status"]), list(table["privacy"]), list(table["SSIM"]), higher)
        assert got.name == "pareto" and got.dtype == bool
        assert list(got.index) == list(table.index)
        assert list(got) == expected, f"trial {trial}"


def test_pareto_front_direction_ties_and_inference() -> None:
    table = pd.DataFrame(
        {
            "status": ["ok", "ok", "ok", "ok", "missing checkpoint: x", "ok"],
            "privacy": [0.9, 0.9, 0.5, 0.95, 1.0, NAN],
            "LPIPS": [0.2, 0.2, 0.1, 0.4, 0.0, 0.0],
        }
    )
    # lower LPIPS is better: the equal pair (0, 1) and the extremes (2: best LPIPS, 3: best privacy)
    assert list(pareto_front(table, utility="LPIPS", higher_utility_is_better=False)) == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    # None infers the direction from the name
    assert list(pareto_front(table, utility="LPIPS", higher_utility_is_better=None)) == list(
        pareto_front(table, utility="LPIPS", higher_utility_is_better=False)
    )
    # read as higher-is-better, row 3 (privacy 0.95, LPIPS 0.4) dominates rows 0, 1 and 2
    assert list(pareto_front(table, utility="LPIPS")) == [False, False, False, True, False, False]


def test_pareto_front_rejects_bad_input() -> None:
    with pytest.raises(KeyError, match="SSIM"):
        pareto_front(pd.DataFrame({"privacy": [0.5]}))
    with pytest.raises(ValueError, match="non-numeric"):
        pareto_front(pd.DataFrame({"privacy": [0.5, "high"], "SSIM": [0.1, 0.2]}))


def _leaderboard_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "method id": ["blur", "dp/eps=1", "dp/eps=8", "rev<script>alert(1)</script>", "gone"],
            "method": ["blur", "dp", "dp", "rev", "gone"],
            "paper": ["p1", "p2", "p2", "p3", "p4"],
            "variant": ["", "eps=1", "eps=8", "", ""],
            "status": ["ok", "ok", "ok", "ok", "missing checkpoint: no run of row 'demo'"],
            "ε (nominal)": [NAN, 1.0, 8.0, NAN, NAN],
            "ε (certified)": [NAN, 1.0, NAN, NAN, NAN],
            "SSIM": [0.1 + 0.2, 1 / 3, 0.7123456789012345, 0.9, NAN],
            "PSNR": [20.125, 15.5, 25.0, 100.0, NAN],
            "LPIPS": [0.3, 0.5, 0.2, 0.05, NAN],
            "worst rank-1": [0.4, 0.1, 0.5, 0.2, NAN],
            "privacy": [0.6, 0.9, 0.5, 0.8, NAN],
            "parrot gain": [0.1, 0.05, 0.2, 0.3, NAN],
            "recovery PSNR (right key)": [NAN, NAN, NAN, 38.2, NAN],
            "recovery PSNR (wrong key)": [NAN, NAN, NAN, 9.1, NAN],
            "xception flagged": [0.125, 0.2, 0.3, 0.4, NAN],
            "record": ["r/1", "r/2", "r/3", "r/4", ""],
        }
    )


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.verify()


def test_write_leaderboard_files(tmp_path: Path) -> None:
    table = _leaderboard_table()
    recognizers = pd.DataFrame(
        {"recognizer": ["dlib_resnet", "arcface"], "excluded for": ["", "rev (trained with it)"]}
    )
    out = write_leaderboard(
        table,
        tmp_path / "reports",
        title="Demo leaderboard",
        notes=["same test images for all", "note with <b>tag</b>"],
        panel={"panel": "demo", "recognizers": ["dlib_resnet", "arcface"]},
        extra_tables={"recognizers": recognizers},
    )
    assert set(out) == {"md", "csv", "html", "pareto", "epsilon"}
    assert all(path.parent == tmp_path / "reports" and path.name == FILE_NAMES[k] for k, path in out.items())
    for kind in ("pareto", "epsilon"):
        _assert_png(out[kind])

    md = out["md"].read_text(encoding="utf-8")
    assert md.startswith("# Demo leaderboard\n")
    assert "- same test images for all" in md and "**recognizers**: dlib_resnet, arcface" in md
    row = next(line for line in md.splitlines() if line.startswith("| gone"))
    assert "missing checkpoint: no run of row 'demo'" in row
    assert "0.300" not in row and row.count("--") >= 5  # no numbers for a row that did not run
    blur = next(line for line in md.splitlines() if line.startswith("| blur"))
    assert "0.300" in blur and "20.12" in blur and "0.125" in blur  # 3 decimals for [0, 1], 2 for dB
    assert "8 (nominal, not certified)" in md and "1 (certified)" in md
    assert "38.20 / 9.10" in md and "rev (trained with it)" in md
    assert "](leaderboard_pareto.png)" in md and "](leaderboard_epsilon.png)" in md

    back = pd.read_csv(out["csv"], keep_default_na=False, na_values=[""])
    assert list(back.columns) == [*table.columns, "pareto"]
    for column in table.columns:
        if pd.api.types.is_numeric_dtype(table[column]):
            assert np.array_equal(back[column].to_numpy(), table[column].to_numpy(), equal_nan=True), column
    assert list(back["pareto"]) == list(pareto_front(table))
    assert list(back["pareto"]) == [False, True, False, True, False]

    page = out["html"].read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;tag&lt;/b&gt;" in page
    assert '<img src="leaderboard_pareto.png"' in page and '<img src="leaderboard_epsilon.png"' in page
    assert "missing checkpoint: no run of row &#x27;demo&#x27;" in page


def test_no_epsilon_plot_without_dp_rows(tmp_path: Path) -> None:
    table = _leaderboard_table()
    (tmp_path / FILE_NAMES["epsilon"]).write_bytes(b"stale")  # an earlier leaderboard's figure
    no_dp = table.assign(**{"ε (nominal)": NAN, "ε (certified)": NAN})
    out = write_leaderboard(no_dp, tmp_path, title="t", utility="LPIPS")
    assert "epsilon" not in out and not (tmp_path / FILE_NAMES["epsilon"]).exists()
    assert "leaderboard_epsilon.png" not in out["md"].read_text(encoding="utf-8")
    assert "lower is better" in out["md"].read_text(encoding="utf-8")
    _assert_png(out["pareto"])
    assert epsilon_plot(table.drop(columns=["ε (nominal)", "ε (certified)"]), tmp_path / "e.png") is None
    assert not (tmp_path / "e.png").exists()


def test_plots_with_nothing_to_show_and_bad_input(tmp_path: Path) -> None:
    table = _leaderboard_table().assign(status="failed: out of memory")
    _assert_png(pareto_plot(table, tmp_path / "p.png", title="all $failed$"))
    _assert_png(epsilon_plot(table, tmp_path / "e.png"))  # DP rows exist, none ran: the figure says so
    out = write_leaderboard(table, tmp_path / "all_failed", title="t")
    assert out["md"].read_text(encoding="utf-8").count("failed: out of memory") == len(table)
    with pytest.raises(ValueError, match="positive"):
        epsilon_plot(
            _leaderboard_table().assign(**{"ε (nominal)": 0.0, "ε (certified)": NAN}), tmp_path / "z.png"
        )
    with pytest.raises(KeyError, match="status"):
        write_leaderboard(table.drop(columns=["status"]), tmp_path, title="t")
