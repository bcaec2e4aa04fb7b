"""Local sweep expander: spec validation, grid/random points, dotlist round trip, CLI (fake launcher)."""

from __future__ import annotations

import csv
import json
import math
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.sweep import LaunchResult, index_path_of, main, parse_run_dir, point_dir, subprocess_launcher
from src.sweeping import (
    SweepSpecError,
    apply_parameter_overrides,
    experiment_from_command,
    grid_points,
    load_sweep_spec,
    parse_sweep_spec,
    point_to_overrides,
    random_points,
    split_overrides,
    sweep_points,
)

REPO = Path(__file__).resolve().parents[1]
COMMAND = ["${env}", "${interpreter}", "-m", "src.train", "experiment=demo/recognizer", "${args_no_hyphens}"]


def _spec(parameters: dict[str, Any], method: str = "grid", **extra: Any):
    return parse_sweep_spec({"method": method, "parameters": parameters, "command": COMMAND, **extra})


def _dotlist(overrides: list[str]) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.from_dotlist(overrides), resolve=False)


# --- spec ---------------------------------------------------------------------------------------------------


def test_shipped_demo_sweep_loads() -> None:
    spec = load_sweep_spec(REPO / "experiments/sweeps/demo_recognizer_lr.yaml")
    assert spec.method == "grid"
    assert spec.name == "demo_recognizer_lr"
    assert spec.metric is not None and (spec.metric.name, spec.metric.goal) == ("val/rank1", "maximize")
    assert grid_points(spec) == [
        {"model.optimizer.lr": 0.001, "seed": 0},
        {"model.optimizer.lr": 0.001, "seed": 1},
        {"model.optimizer.lr": 0.003, "seed": 0},
        {"model.optimizer.lr": 0.003, "seed": 1},
    ]
    assert experiment_from_command(spec) == ("demo/recognizer", [])


def test_yaml_exponent_floats_are_floats(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            method: grid
            parameters:
              lr: {values: [1e-4, 3.0e-4, 1]}
            command: ["${env}", "${interpreter}", -m, src.train, experiment=x, "${args_no_hyphens}"]
            """
        )
    )
    spec = load_sweep_spec(path)
    assert spec.name == "s"  # defaults to the file stem
    values = [p["lr"] for p in grid_points(spec)]
    assert values == [1e-4, 3e-4, 1] and [type(v) for v in values] == [float, float, int]


def test_unquoted_macro_in_flow_list_gives_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("method: grid\nparameters: {a: {value: 1}}\ncommand: [${env}, experiment=x]\n")
    with pytest.raises(SweepSpecError, match=r"bad\.yaml.*quote W&B macros"):
        load_sweep_spec(path)


def test_an_unknown_method_is_a_clear_error() -> None:
    with pytest.raises(SweepSpecError, match=r"method.*one of"):
        _spec({"a": {"values": [1, 2]}}, method="annealing", metric={"name": "val/loss", "goal": "minimize"})


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"method": "grid", "parameters": {"a": {"value": 1}}, "metrc": {}}, r"unknown top-level.*metrc"),
        ({"method": "grid", "parameters": {"a": {"valuse": [1]}}}, r"parameters\.a: unknown key.*valuse"),
        ({"method": "grid", "parameters": {"a": {"values": [1]}}, "metric": {"nam": "x"}}, r"metric.*nam"),
        (
            {"method": "grid", "parameters": {"a": {"distribution": "wiggly", "min": 0}}},
            r"unknown distribution",
        ),
        ({"method": "grid", "parameters": {"a": {"distribution": "beta"}}}, r"not supported"),
        (
            {"method": "grid", "parameters": {"a": {"values": [1, 2], "probabilities": [0.5]}}},
            r"probabilities",
        ),
        ({"method": "grid", "parameters": {"a": {"min": 2, "max": 1}}}, r"min .* must not exceed max"),
        ({"method": "grid", "parameters": {"a": {"min": 0.0, "max": 1.0, "values": [1]}}}, r"do not apply"),
        ({"method": "sobol", "parameters": {"a": {"value": 1}}}, r"'method' must be one of"),
        ({"method": "grid", "parameters": {}}, r"'parameters' must be a non-empty mapping"),
    ],
)
def test_invalid_specs_name_the_problem(data: dict[str, Any], match: str) -> None:
    with pytest.raises(SweepSpecError, match=match):
        parse_sweep_spec(data, source="x.yaml")


def test_distribution_inference() -> None:
    spec = _spec(
        {
            "c": {"value": "x"},
            "k": {"values": [1, 2]},
            "i": {"min": 1, "max": 3},
            "f": {"min": 0.0, "max": 1},
            "l": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
        },
        method="random",
    )
    assert [p.distribution for p in spec.parameters] == [
        "constant",
        "categorical",
        "int_uniform",
        "uniform",
        "log_uniform_values",
    ]


def test_nested_parameters_flatten_to_dotted_keys() -> None:
    spec = _spec(
        {
            "model": {
                "parameters": {
                    "optimizer": {"parameters": {"lr": {"values": [0.1, 0.2]}, "name": {"value": "adam"}}},
                    "width": {"values": [8]},
                }
            },
            "seed": {"values": [0]},
        }
    )
    assert spec.parameter_names == ["model.optimizer.lr", "model.optimizer.name", "model.width", "seed"]
    points = grid_points(spec)
    assert points[1] == {
        "model.optimizer.lr": 0.2,
        "model.optimizer.name": "adam",
        "model.width": 8,
        "seed": 0,
    }
    assert _dotlist(point_to_overrides(points[0])) == {
        "model": {"optimizer": {"lr": 0.1, "name": "adam"}, "width": 8},
        "seed": 0,
    }


# --- grid ---------------------------------------------------------------------------------------------------


def test_grid_count_is_the_product_and_order_is_stable() -> None:
    spec = _spec(
        {
            "a": {"values": [1, 2, 3]},
            "b": {"values": ["x", "y"]},
            "c": {"value": 5},
            "d": {"min": 0, "max": 1},  # int_uniform: discrete, usable by grid
        }
    )
    points = grid_points(spec)
    assert len(points) == 3 * 2 * 1 * 2
    assert len({json.dumps(p, sort_keys=True) for p in points}) == len(points)
    assert points == grid_points(spec)  # stable
    assert points[:3] == [  # file order, last parameter varies fastest
        {"a": 1, "b": "x", "c": 5, "d": 0},
        {"a": 1, "b": "x", "c": 5, "d": 1},
        {"a": 1, "b": "y", "c": 5, "d": 0},
    ]
    assert points[-1] == {"a": 3, "b": "y", "c": 5, "d": 1}


def test_grid_rejects_continuous_parameters() -> None:
    spec = _spec(
        {"a": {"values": [1]}, "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}}
    )
    with pytest.raises(SweepSpecError, match=r"'lr'.*grid.*discrete"):
        grid_points(spec)


def test_count_and_run_cap_limit_points() -> None:
    spec = _spec({"a": {"values": [1, 2, 3, 4]}}, run_cap=3)
    assert [p["a"] for p in sweep_points(spec)] == [1, 2, 3]
    assert [p["a"] for p in sweep_points(spec, count=2)] == [1, 2]
    with pytest.raises(SweepSpecError, match="--count"):
        sweep_points(_spec({"a": {"min": 0.0, "max": 1.0}}, method="random"))


# --- random -------------------------------------------------------------------------------------------------

RANDOM_PARAMS = {
    "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
    "u": {"min": -1.0, "max": 1.0},
    "i": {"min": 3, "max": 7},
    "opt": {"values": ["adam", "sgd", "adamw"], "probabilities": [0.5, 0.3, 0.2]},
    "q": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 2},
    "n": {"distribution": "normal", "mu": 2.0, "sigma": 0.5},
    "fixed": {"value": 7},
}


def test_random_points_are_reproducible_and_seed_dependent() -> None:
    spec = _spec(RANDOM_PARAMS, method="random")
    a, b, c = (
        random_points(spec, 20, seed=0),
        random_points(spec, 20, seed=0),
        random_points(spec, 20, seed=1),
    )
    assert a == b
    assert a != c
    assert all(set(p) == set(RANDOM_PARAMS) for p in a)


def test_random_values_follow_their_distributions() -> None:
    spec = _spec(RANDOM_PARAMS, method="random")
    n = 4000
    points = random_points(spec, n, seed=123)
    col = {k: np.array([p[k] for p in points], dtype=object) for k in RANDOM_PARAMS}

    lr = col["lr"].astype(float)
    assert all(isinstance(v, float) for v in col["lr"])
    assert lr.min() >= 1e-5 and lr.max() <= 1e-1
    # log-uniform closed form: P(lr < 1e-3) = (log 1e-3 - log 1e-5) / (log 1e-1 - log 1e-5) = 0.5
    assert abs((lr < 1e-3).mean() - 0.5) < 0.03
    assert abs((lr < 1e-4).mean() - 0.25) < 0.03

    u = col["u"].astype(float)
    assert u.min() >= -1 and u.max() <= 1 and abs(u.mean()) < 0.05

    i = col["i"]
    assert all(type(v) is int for v in i) and set(i) == {3, 4, 5, 6, 7}

    freq = {k: np.mean(col["opt"] == k) for k in ("adam", "sgd", "adamw")}
    assert freq == pytest.approx({"adam": 0.5, "sgd": 0.3, "adamw": 0.2}, abs=0.03)

    assert set(col["q"]) <= {0, 2, 4, 6, 8, 10} and all(type(v) is int for v in col["q"])

    normal = col["n"].astype(float)
    assert normal.mean() == pytest.approx(2.0, abs=0.05) and normal.std() == pytest.approx(0.5, abs=0.05)
    assert set(col["fixed"]) == {7}


# --- overrides ----------------------------------------------------------------------------------------------


def test_overrides_round_trip_through_omegaconf_dotlist() -> None:
    point = {
        "model.optimizer.lr": 1e-4,
        "tiny": 1.5e-12,
        "big": 1e16,
        "whole_float": 3.0,
        "neg": -0.25,
        "count": 12,
        "flag": True,
        "off": False,
        "nothing": None,
        "name": "adam",
        "path": "data/celeba-hq/train.txt",
        "spaced": "two words",
        "looks_bool": "true",
        "looks_float": "1e-4",
        "looks_int": "007",
        "looks_null": "null",
        "colon": "a: b",
        "equals": "k=v",
        "hash": "#comment",
        "quote": 'say "hi" it\'s',
        "comma": "a,b",
        "brackets": "[1]",
        "empty": "",
        "unicode": "café ✓",
        "sexagesimal": "1:20",
        "items": [1, "a,b", 2.5, None, [True]],
        "mapping": {"k": [1, 2], "s": "x y"},
    }
    overrides = point_to_overrides(point)
    assert overrides[0] == "model.optimizer.lr=0.0001"
    back = _dotlist(overrides)
    flat = {k: v for k, v in back.items() if k != "model"}
    assert back["model"]["optimizer"]["lr"] == 1e-4
    for key, value in point.items():
        if key == "model.optimizer.lr":
            continue
        assert flat[key] == value, key
        assert type(flat[key]) is type(value if not isinstance(value, tuple) else list(value)), key


def test_special_floats_round_trip() -> None:
    back = _dotlist(point_to_overrides({"a": float("nan"), "b": float("inf"), "c": -float("inf")}))
    assert math.isnan(back["a"]) and back["b"] == math.inf and back["c"] == -math.inf


def test_random_floats_round_trip_exactly() -> None:
    spec = _spec(RANDOM_PARAMS, method="random")
    for point in random_points(spec, 50, seed=7):
        assert _dotlist(point_to_overrides(point)) == point


def test_bad_override_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="dotted config key"):
        point_to_overrides({"a b": 1})


# --- command ------------------------------------------------------------------------------------------------


def test_experiment_and_fixed_overrides_from_command() -> None:
    spec = parse_sweep_spec(
        {
            "method": "grid",
            "parameters": {"a": {"value": 1}},
            "command": [
                "${env}",
                "${interpreter}",
                "-m",
                "src.train",
                "experiment=demo/recognizer",
                "trainer.max_epochs=2",
                "${args_no_hyphens}",
            ],
        }
    )
    assert experiment_from_command(spec) == ("demo/recognizer", ["trainer.max_epochs=2"])


def test_command_must_name_the_experiment() -> None:
    no_command = parse_sweep_spec(
        {"method": "grid", "parameters": {"a": {"value": 1}}, "program": "src/train.py"}
    )
    with pytest.raises(SweepSpecError, match=r"no 'command'.*experiment"):
        experiment_from_command(no_command)
    no_experiment = parse_sweep_spec(
        {"method": "grid", "parameters": {"a": {"value": 1}}, "command": ["${env}", "${args_no_hyphens}"]}
    )
    with pytest.raises(SweepSpecError, match=r"experiment=<name>"):
        experiment_from_command(no_experiment)


# --- CLI ----------------------------------------------------------------------------------------------------

SWEEP_YAML = """\
name: lr_seed
method: grid
metric: {name: val/rank1, goal: maximize}
parameters:
  model.optimizer.lr: {values: [0.001, 0.003]}
  seed: {values: [0, 1]}
command:
  - ${env}
  - ${interpreter}
  - -m
  - src.train
  - experiment=demo/recognizer
  - trainer.max_epochs=2
  - ${args_no_hyphens}
"""


class FakeTrain:
    """Stands in for ``python -m src.train``: makes the run dir it is given (``run.dir``) with a summary;
    point 2 crashes."""

    def __init__(self, runs_root: Path) -> None:
        self.runs_root = runs_root
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str]) -> LaunchResult:
        self.commands.append(command)
        args = dict(item.split("=", 1) for item in command[3:])
        point = int(args["sweep.point"])
        run_dir = Path(args["run.dir"])
        run_dir.mkdir(parents=True)
        (run_dir / "meta.json").write_text(json.dumps({"run_id": f"run{point}", "status": "running"}))
        if point == 2:
            return LaunchResult(returncode=3, run_dir=run_dir)
        rank1 = float(args["model.optimizer.lr"]) * 100 + int(args["seed"])
        (run_dir / "summary.json").write_text(json.dumps({"val/rank1": rank1, "test/psnr": 30.0 + point}))
        return LaunchResult(returncode=0, run_dir=run_dir)


def test_cli_runs_every_point_and_writes_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep_file = tmp_path / "lr_seed.yaml"
    sweep_file.write_text(SWEEP_YAML)
    runs_root = tmp_path / "runs"
    fake = FakeTrain(runs_root)

    code = main([str(sweep_file), "--runs-root", str(runs_root), "datamodule.batch_size=4"], launcher=fake)

    assert code == 1  # point 2 failed
    out = capsys.readouterr().out
    assert "[1/4]" in out and "[4/4]" in out and "3/4 point(s) ok" in out
    assert len(fake.commands) == 4
    (index_path,) = runs_root.glob("sweeps/lr_seed/*/index.csv")
    sweep_dir = index_path.parent
    first = fake.commands[0]
    assert first[:4] == [sys.executable, "-m", "src.train", "experiment=demo/recognizer"]
    assert first[4:] == [
        "trainer.max_epochs=2",
        "model.optimizer.lr=0.001",
        "seed=0",
        f"paths.runs_dir={runs_root.resolve()}",
        "datamodule.batch_size=4",
        "logger.wandb.group=lr_seed",
        "sweep.name=lr_seed",
        "sweep.point=0",
        f"run.dir={sweep_dir.resolve() / 'points' / '000'}",
    ]

    assert (index_path.parent / "sweep.yaml").read_text() == SWEEP_YAML
    with index_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "point",
        "status",
        "returncode",
        "reason",
        "job_id",
        "log",
        "run_dir",
        "model.optimizer.lr",
        "seed",
        "val/rank1",
    ]
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "ok"]
    assert [r["returncode"] for r in rows] == ["0", "0", "3", "0"]
    assert [r["reason"] for r in rows] == ["", "", "exit code 3", ""]
    assert [r["seed"] for r in rows] == ["0", "1", "0", "1"]
    assert [r["model.optimizer.lr"] for r in rows] == ["0.001", "0.001", "0.003", "0.003"]
    # the points' run dirs sit in the sweep folder, and the index names them relative to it
    assert [r["run_dir"] for r in rows] == [f"points/00{i}" for i in range(4)]
    assert all((sweep_dir / r["run_dir"] / "meta.json").is_file() for r in rows)
    assert not (runs_root / "demo").exists()  # nothing among the experiment's own runs
    assert [float(r["val/rank1"]) if r["val/rank1"] else None for r in rows] == [0.1, 1.1, None, 1.3]


def test_cli_dry_run_prints_commands_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_file = tmp_path / "lr_seed.yaml"
    sweep_file.write_text(SWEEP_YAML)

    def never(command: list[str]) -> LaunchResult:
        raise AssertionError("dry run must not launch")

    code = main([str(sweep_file), "--dry-run", "--runs-root", str(tmp_path / "runs")], launcher=never)
    assert code == 0
    out = capsys.readouterr().out
    assert out.count("-m src.train experiment=demo/recognizer") == 4
    assert "sweep.point=3" in out
    assert not (tmp_path / "runs").exists()


def test_cli_bad_sweep_file_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep_file = tmp_path / "b.yaml"
    sweep_file.write_text("method: annealing\nparameters: {a: {values: [1, 2]}}\n")
    assert main([str(sweep_file)], launcher=FakeTrain(tmp_path)) == 2
    assert "annealing" in capsys.readouterr().err


def test_subprocess_launcher_streams_and_parses_run_dir(capfd: pytest.CaptureFixture[str]) -> None:
    script = "print('training...'); print('RUN_DIR=runs/demo/x/20260101-000000-abcdef'); raise SystemExit(4)"
    result = subprocess_launcher([sys.executable, "-c", script])
    assert result == LaunchResult(returncode=4, run_dir=Path("runs/demo/x/20260101-000000-abcdef"))
    assert "training..." in capfd.readouterr().out
    assert parse_run_dir("  RUN_DIR=/a/b \n") == "/a/b" and parse_run_dir("run_dir=/a") is None


# --- parameter changes on the command line -----------------------------------------------------------------


def _dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    sweep_file = tmp_path / "lr_seed.yaml"
    sweep_file.write_text(SWEEP_YAML)
    code = main([str(sweep_file), "--dry-run", *args], launcher=FakeTrain(tmp_path))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "change",
    [
        "parameters.model.optimizer.lr.values=[1e-4, 0.01, 0.1]",
        "model.optimizer.lr.values=[1e-4,0.01,0.1]",
        "+model.optimizer.lr.values=[0.0001,0.01,0.1]",
    ],
)
def test_values_of_a_parameter_are_replaced_from_the_command_line(
    change: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _dry_run(tmp_path, capsys, change, "trainer.max_epochs=1")
    assert code == 0
    assert "3 point(s)" not in out and "6 point(s)" in out  # 3 learning rates x 2 seeds
    commands = [line for line in out.splitlines() if "-m src.train" in line]
    assert [c.split("model.optimizer.lr=")[1].split()[0] for c in commands] == ["0.0001"] * 2 + [
        "0.01"
    ] * 2 + ["0.1"] * 2
    assert all("trainer.max_epochs=1 " in c and "values" not in c for c in commands)


def test_a_parameter_given_a_value_is_pinned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``seed=7`` pins the swept seed (it used to override every point's seed while the index said 0, 1)."""
    code, out, _ = _dry_run(tmp_path, capsys, "seed=7")
    assert code == 0 and "2 point(s)" in out
    assert out.count(" seed=7 ") == 2 and " seed=0 " not in out


def test_a_range_can_be_narrowed(tmp_path: Path) -> None:
    spec = _spec(
        {
            "model": {"parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1}}},
            "seed": {"values": [0, 1]},
        },
        method="random",
    )
    changes, rest = split_overrides(spec, ["model.lr.max=1e-3", "parameters.seed.values=[5]", "data.x=1"])
    assert rest == ["data.x=1"]
    changed = apply_parameter_overrides(spec, changes)
    lr, seed = changed.parameters
    assert (lr.distribution, lr.min, lr.max) == ("log_uniform_values", 1e-5, 1e-3)
    assert seed.values == (5,)
    assert all(1e-5 <= p["model.lr"] <= 1e-3 and p["seed"] == 5 for p in random_points(changed, 50, seed=0))
    assert spec.parameters[0].max == 1e-1  # the loaded sweep is unchanged


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            "parameters.model.optimizer.momentum.values=[0.9]",
            r"has no parameter 'model.optimizer.momentum'; its parameters: model.optimizer.lr, seed",
        ),
        ("parameters.lr.values=[1]", r"has no parameter 'lr'; its parameters: model.optimizer.lr, seed"),
        ("parameters.seed=3", r"name the field of parameter 'seed'.*parameters.seed.values=\[\.\.\.\]"),
        ("model.optimizer.lr.valuse=[1]", r"'valuse' is not a field.*fields: distribution, max, min, mu"),
        ("parameters.seed.values=[1", r"cannot read the value"),
        (
            "parameters.seed.min=0",
            r"lr_seed.yaml with parameters.seed.min=0: parameters.seed: key\(s\) \['min'\]",
        ),
        ("run.dir=/tmp/x", r"run.dir is set by the sweep for each point"),
    ],
)
def test_a_wrong_parameter_change_is_a_clear_error(
    change: str, match: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _dry_run(tmp_path, capsys, change)
    assert code == 2
    assert re.search(match, err), err


def test_the_changed_sweep_is_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep_file = tmp_path / "lr_seed.yaml"
    sweep_file.write_text(SWEEP_YAML)
    runs_root = tmp_path / "runs"
    change = "parameters.model.optimizer.lr.values=[0.01]"
    assert (
        main(
            [str(sweep_file), "--runs-root", str(runs_root), change, "seed=1"], launcher=FakeTrain(runs_root)
        )
        == 0
    )
    (sweep_dir,) = runs_root.glob("sweeps/lr_seed/*")
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["parameter_overrides"] == [change, "seed=1"]
    assert record["extra_overrides"] == []
    rerun = load_sweep_spec(sweep_dir / "sweep.yaml")  # the sweep as it ran, runnable again
    assert grid_points(rerun) == [{"model.optimizer.lr": 0.01, "seed": 1}]


def test_point_dirs_sort_in_point_order(tmp_path: Path) -> None:
    assert point_dir(tmp_path, 7, 12) == tmp_path / "points" / "007"
    assert point_dir(tmp_path, 7, 1001) == tmp_path / "points" / "0007"
    assert index_path_of(tmp_path / "points" / "007", tmp_path) == "points/007"
    assert index_path_of(Path("/elsewhere/run"), tmp_path) == "/elsewhere/run"


@pytest.mark.slow
def test_real_sweep_runs_every_point_and_indexes_it(tmp_path: Path) -> None:
    """The shipped demo sweep, shrunk, through real training subprocesses."""
    from tests.helpers import run_cli, tiny_overrides

    runs_root = tmp_path / "runs"
    tiny = tiny_overrides("demo/recognizer", runs_root, extra=["test=false"])
    run_cli(
        "src.sweep",
        ["experiments/sweeps/demo_recognizer_lr.yaml", "--runs-root", str(runs_root), "--count", "2", *tiny],
        timeout=600,
    )
    (index,) = (runs_root / "sweeps" / "demo_recognizer_lr").glob("*/index.csv")
    table = pd.read_csv(index)
    assert list(table["status"]) == ["ok", "ok"]
    assert table["val/rank1"].between(0, 1).all()
    for run_dir in table["run_dir"]:
        assert run_dir.startswith("points/")
        meta = json.loads((index.parent / run_dir / "meta.json").read_text())
        assert meta["sweep"]["name"] == "demo_recognizer_lr"


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_misspelt_run_key_stops_the_sweep_before_any_point(
    tmp_path: Path, dry_run: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """``trainer.max_epoch=1`` launched every point (each failing with exit 2) and left a sweep folder."""
    launched: list[list[str]] = []

    def launcher(command: list[str]) -> LaunchResult:
        launched.append(command)
        return LaunchResult(0)

    args = [
        str(REPO / "experiments/sweeps/demo_recognizer_lr.yaml"),
        "trainer.max_epoch=1",
        "--runs-root",
        str(tmp_path),
    ]
    assert main([*args, *(["--dry-run"] if dry_run else [])], launcher=launcher) == 2
    error = capsys.readouterr().err
    assert "point 0 of" in error and "Did you mean 'trainer.max_epochs'?" in error
    assert launched == [] and not (tmp_path / "sweeps").exists()


def test_point_lines_show_the_metric_with_four_significant_digits() -> None:
    """One point printed ``val/rank1=0.668749988079071``, the next ``0.4375``; index.csv keeps full values."""
    from src.sweep import _shown

    assert _shown(0.668749988079071) == "0.6687" and _shown(0.4375) == "0.4375" and _shown("") == ""
