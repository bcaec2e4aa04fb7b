"""Published numbers beside reproduced ones (``src/reporting/published.py``, docs/reports.md "Published
numbers"): the merge and its differences against hand values, published rows without a run, the note when
a paper has no file, malformed files (an error naming the file, line and column), and every
``experiments/<paper>/published.csv`` checked against its paper's layout."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.analysis.runs import load_run, run_row
from src.papers.registry import PAPERS, REPORT_LAYOUTS, discover
from src.reporting import (
    ReportError,
    build_combined_report,
    build_report,
    csv_text,
    latex_text,
    markdown_text,
)
from src.reporting.build import NO_PUBLISHED_ATTRIBUTE, merge_published
from src.reporting.published import (
    DELTA_SUFFIX,
    PAPER_SUFFIX,
    PUBLISHED_FILE,
    add_published,
    comparison_notes,
    metric_range,
    read_published,
    text_columns,
)
from tests.conftest import PROJECT_ROOT
from tests.fake_runs import write_run
from tests.test_report import examples

EXPERIMENTS = PROJECT_ROOT / "experiments"
PUBLISHED_FILES = sorted(EXPERIMENTS.glob(f"*/{PUBLISHED_FILE}"))
discover()


def table() -> pd.DataFrame:
    """A small reproduced table: two runs, text keys and two metrics."""
    return pd.DataFrame(
        {
            "experiment": ["exp/a", "exp/b"],
            "detector": ["X", "Y"],
            "test set": ["T1", "T1"],
            "auc": [0.9, 0.8],
            "ap": [0.5, 0.6],
        }
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / PUBLISHED_FILE
    path.write_text(text, encoding="utf-8")
    return path


PUBLISHED = (
    "detector,test set,auc,ap,source\n"
    "X,T1,0.95,,paper A Table 1\n"  # matches exp/a; ap not published
    "Y,T2,0.7,0.65,paper B Table 2\n"  # no run on T2
    "Z,T1,0.5,0.4,paper A Table 1\n"  # no run of Z
)


def test_merge_adds_paper_and_difference_columns_after_each_metric(tmp_path: Path) -> None:
    published = read_published(write(tmp_path, PUBLISHED), table())
    assert published.keys == ("detector", "test set") and published.metrics == ("auc", "ap")
    merged, comparison = add_published(table(), published)
    assert list(merged.columns) == [
        "experiment",
        "detector",
        "test set",
        "auc",
        "auc (paper)",
        "auc Δ",
        "ap",
        "ap (paper)",
        "ap Δ",
    ]
    a = merged.iloc[0]
    assert a["experiment"] == "exp/a" and a["auc (paper)"] == 0.95
    assert a["auc Δ"] == pytest.approx(0.9 - 0.95)  # reproduced − published
    assert math.isnan(a["ap (paper)"]) and math.isnan(a["ap Δ"])  # nothing published for ap
    b = merged.iloc[1]  # Y on T1: the file has Y on T2 only
    assert b["experiment"] == "exp/b" and math.isnan(b["auc (paper)"]) and math.isnan(b["auc Δ"])
    assert (comparison.total, comparison.matched, comparison.compared_rows) == (3, 1, 1)
    assert comparison.sources == {"paper A Table 1": 2, "paper B Table 2": 1}


def test_published_rows_without_a_run_are_listed_with_empty_reproduced_values(tmp_path: Path) -> None:
    merged, comparison = add_published(table(), read_published(write(tmp_path, PUBLISHED), table()))
    assert len(merged) == 4
    extra = merged.iloc[2:]
    assert extra[["detector", "test set"]].values.tolist() == [["Y", "T2"], ["Z", "T1"]]
    assert extra["experiment"].isna().all() and extra["auc"].isna().all() and extra["auc Δ"].isna().all()
    assert extra["auc (paper)"].tolist() == [0.7, 0.5] and extra["ap (paper)"].tolist() == [0.65, 0.4]
    assert comparison.unmatched == ("detector=Y, test set=T2", "detector=Z, test set=T1")
    # every format shows them and the differences
    csv = csv_text(merged).splitlines()
    assert "auc Δ" in csv[0].split(",") and csv[1] == "exp/a,X,T1,0.9,0.95,-0.05,0.5,,"
    assert csv[3] == ",Y,T2,,0.7,,,0.65,"
    markdown = markdown_text(merged).splitlines()
    assert [c.strip() for c in markdown[0].strip("|").split("|")] == list(merged.columns)
    assert "-0.0500" in markdown[2] and "0.6500" in markdown[4]
    assert r"auc $\Delta$" in latex_text(merged)


def test_a_metric_the_table_lacks_is_shown_alone_with_a_note(tmp_path: Path) -> None:
    path = write(tmp_path, "detector,test set,video auc,source\nX,T1,0.93,paper A\n")
    merged, comparison = add_published(table(), read_published(path, table()))
    assert comparison.absent == ("video auc",)
    assert merged.columns[-1] == "video auc (paper)" and "video auc Δ" not in merged.columns
    assert merged["video auc (paper)"].tolist()[:1] == [0.93]


def test_a_table_no_published_row_matches_is_left_as_it_is(tmp_path: Path) -> None:
    path = write(tmp_path, "detector,test set,auc,source\nX,T9,0.95,paper A\nZ,T1,0.5,paper A\n")
    merged, comparison = add_published(table(), read_published(path, table()))
    assert merged.equals(table()) and not comparison.shown  # e.g. demo runs on synthetic data
    assert (comparison.matched, comparison.total) == (0, 2)
    notes = comparison_notes(comparison, "experiments/p/published.csv")
    assert notes[0] == (
        "Published numbers from experiments/p/published.csv (auc): none of its 2 row(s) matches a row of "
        "this table (compared on detector, test set), so they are not shown in it."
    )
    assert notes[1:] == ["- source (2 row(s)): paper A"]


def test_notes_say_where_the_numbers_come_from_and_what_matched(tmp_path: Path) -> None:
    text = PUBLISHED.replace("auc,ap,", "auc,video auc,").replace(",,paper A", ",0.9,paper A")
    path = write(tmp_path, text)
    _, comparison = add_published(table(), read_published(path, table()))
    notes = comparison_notes(comparison, "experiments/p/published.csv")
    assert notes[0].startswith("Published numbers from experiments/p/published.csv: auc, video auc.")
    assert "`<metric> Δ` = reproduced − published" in notes[0]
    assert notes[1:] == [
        "- 1 of 3 published row(s) match a reproduced row (1 table row(s) compared).",
        "- source (2 row(s)): paper A Table 1",
        "- source (1 row(s)): paper B Table 2",
        "- not a column of this table (no run reports it), so only the published values are shown: "
        "'video auc'",
        "- no reproduced row for 2 published row(s), listed at the end of the table with empty reproduced "
        "values:",
        "  - detector=Y, test set=T2",
        "  - detector=Z, test set=T1",
    ]


def test_a_file_saved_with_a_byte_order_mark_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / PUBLISHED_FILE
    path.write_bytes("\ufeff".encode() + PUBLISHED.encode())
    published = read_published(path, table())
    assert published.keys == ("detector", "test set") and len(published.rows) == 3


def test_boolean_keys_match_their_text(tmp_path: Path) -> None:
    reproduced = pd.DataFrame({"variant": ["p", "p"], "faithful_bugs": [True, False], "ssim": [0.8, 0.9]})
    path = write(tmp_path, "variant,faithful_bugs,ssim,source\np,False,0.85,paper\np,True,0.7,paper\n")
    merged, comparison = add_published(reproduced, read_published(path, reproduced))
    assert merged["ssim (paper)"].tolist() == [0.7, 0.85] and comparison.matched == 2
    assert merged["ssim Δ"].tolist() == pytest.approx([0.1, 0.05])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("auc,source\n0.9,paper\n", r"no key column"),
        ("backbone,auc,source\nresnet,0.9,paper\n", r"column 'backbone' is not a column of the table"),
        ("detector,test set,auc,source\nX,T1,96.37%,paper\n", r"line 2, column 'auc': '96.37%' is not a"),
        ("detector,test set,auc,source\nX,T1,n/a,paper\n", r"line 2, column 'auc': 'n/a' is not a number"),
        ("detector,test set,auc,source\nX,T1,96.37,paper\n", r"line 2, column 'auc': 96.37 is out of range"),
        ("detector,test set,auc,source\nX,T1,0.9,\n", r"line 2, column 'source': empty"),
        ("detector,test set,auc\nX,T1,0.9\n", r"no 'source' column"),
        ("detector,test set,auc,source\nX,T1,0.9,a\nX,T1,0.8,b\n", r"line 3: the same row .* as line 2"),
        ("detector,test set,auc,source\nX,T1,0.9\n", r"line 2: 3 field\(s\), the header has 4"),
        ("detector,test set,auc,source\nX,,0.9,paper\n", r"line 2, column 'test set': empty key value"),
        ("detector,test set,auc,ap,source\nX,T1,,,paper\n", r"line 2: no published number"),
        ("detector,auc,auc,source\nX,0.9,0.8,paper\n", r"named twice"),
        ("detector,test set,source\nX,T1,paper\n", r"no metric column"),
        ("detector,test set,auc,source\n", r"no rows below the header"),
        ("", r"the file is empty"),
    ],
)
def test_a_malformed_file_is_an_error_naming_the_file_line_and_column(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ReportError, match=message) as caught:
        read_published(path, table())
    assert str(caught.value).startswith(str(path))


def test_no_file_says_no_published_numbers_available_and_why(tmp_path: Path) -> None:
    experiments = tmp_path / "experiments"
    merged, notes, comparison = merge_published(table(), "face_recognizer", experiments)
    assert comparison is None and merged.equals(table())
    reason = inspect.getmodule(REPORT_LAYOUTS["face_recognizer"]).NO_PUBLISHED_NUMBERS
    assert notes == [f"No published numbers available for face_recognizer: {reason}."]
    # a paper whose report module gives no reason: the missing file is named
    _, notes, _ = merge_published(table(), "detection_baselines", experiments)
    assert notes == [
        "No published numbers available for detection_baselines: there is no "
        "experiments/detection_baselines/published.csv."
    ]
    (experiments / "detection_baselines").mkdir(parents=True)
    bad = write(experiments / "detection_baselines", "detector,test set,auc,source\nX,T1,high,paper\n")
    with pytest.raises(ReportError, match=rf"{bad}, line 2, column 'auc'"):
        merge_published(table(), "detection_baselines", experiments)


def detection_run(root: Path) -> Path:
    """A detection baseline run on FF++ c23 (its row matches DeepfakeBench's Xception row)."""
    experiment, model, metrics, _ = examples("/w/recognizer.pt")["detection_baselines"]
    run_dir = write_run(
        root, experiment, model, metrics, datamodule="src.datamodules.ffpp.FFPPFramesDataModule"
    )
    config = OmegaConf.load(run_dir / "config.yaml")
    OmegaConf.update(config, "datamodule.compression", "c23", force_add=True)
    OmegaConf.save(config, run_dir / "config.yaml")
    return run_dir


def test_report_shows_reproduced_published_and_difference(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    detection_run(root)
    report = build_report("detection_baselines", root, EXPERIMENTS)
    rows = report.table[report.table["experiment"].notna()]
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row["frame AUC"], row["frame AUC (paper)"]) == (0.91, 0.9637)
    assert row["frame AUC Δ"] == pytest.approx(0.91 - 0.9637)
    comparison = report.comparisons["detection_baselines"]
    published = pd.read_csv(EXPERIMENTS / "detection_baselines" / PUBLISHED_FILE)
    assert comparison.total == len(published) and comparison.matched == 1
    assert len(report.table) == 1 + len(published) - 1  # every other published row is listed
    notes = "\n".join(report.notes)
    assert f"1 of {len(published)} published row(s) match a reproduced row" in notes
    assert "experiments/detection_baselines/published.csv" in notes and "DeepfakeBench" in notes
    assert "- detector=Xception, test set=FF++ c40" in notes


def test_combined_report_keeps_each_papers_published_numbers_and_notes(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    detection_run(root)
    experiment, model, metrics, _ = examples("/w/recognizer.pt")["eg"]
    write_run(root, experiment, model, metrics, datamodule="src.datamodules.ffpp.FFPPFramesDataModule")
    report = build_combined_report(["detection_baselines", "eg"], root, EXPERIMENTS)
    assert set(report.comparisons) == {"detection_baselines"}
    eg = report.table[report.table["paper"] == "eg"]
    assert len(eg) == 1 and eg["frame AUC (paper)"].isna().all()
    published_only = report.table[report.table["experiment"].isna()]
    assert (published_only["paper"] == "detection_baselines").all() and len(published_only) > 0
    reason = inspect.getmodule(REPORT_LAYOUTS["eg"]).NO_PUBLISHED_NUMBERS
    assert f"No published numbers available for eg: {reason}." in report.notes


@pytest.mark.parametrize("paper", sorted(PAPERS))
def test_every_paper_has_published_numbers_or_says_why_not(paper: str) -> None:
    has_file = (EXPERIMENTS / paper / PUBLISHED_FILE).is_file()
    reason = getattr(inspect.getmodule(REPORT_LAYOUTS.get(paper)), NO_PUBLISHED_ATTRIBUTE, None)
    assert has_file != bool(reason), (
        f"{paper}: add experiments/{paper}/{PUBLISHED_FILE} or set {NO_PUBLISHED_ATTRIBUTE} in its report "
        "module (not both)"
    )


def layout_table(paper: str, tmp_path: Path) -> pd.DataFrame:
    """The paper's table from its example run (tests/test_report.py), before published numbers."""
    experiment, model, metrics, overrides = examples("/w/recognizer.pt")[paper]
    run_dir = write_run(tmp_path / "runs", experiment, model, metrics, overrides=overrides)
    return REPORT_LAYOUTS[paper](pd.DataFrame([run_row(load_run(run_dir, read_wandb=False))]))


@pytest.mark.parametrize("path", PUBLISHED_FILES, ids=[p.parent.name for p in PUBLISHED_FILES])
def test_every_published_file_parses_against_its_papers_layout(path: Path, tmp_path: Path) -> None:
    paper = path.parent.name
    assert paper in REPORT_LAYOUTS, f"{path}: '{paper}' is not a paper with a report layout"
    reproduced = layout_table(paper, tmp_path)
    published = read_published(path, reproduced)  # numbers, ranges, sources, duplicates: or an error
    assert set(published.keys) <= set(text_columns(reproduced)), "key columns the layout does not produce"
    assert set(published.metrics) <= set(reproduced.columns), "metric columns the layout does not produce"
    for metric in published.metrics:
        assert metric_range(metric) is not None, f"{path}: no known range for '{metric}' (METRIC_RANGES)"
    assert all(row.source for row in published.rows)
    # a reproduced row with the first published row's keys is compared with it, metric by metric
    first = published.rows[0]
    matching = reproduced.head(1).copy()
    for key, value in zip(published.keys, first.keys, strict=True):
        matching[key] = value
    merged, comparison = add_published(matching, published)
    assert comparison.matched == 1 and len(merged) == len(published.rows)
    for metric, value in first.values.items():
        assert merged.loc[0, metric + PAPER_SUFFIX] == value
        assert merged.loc[0, metric + DELTA_SUFFIX] == pytest.approx(matching.loc[0, metric] - value)
