"""Sweep methods (grid/random/bayes through propose/tell) and W&B's Hyperband early termination.

Nothing trains here: objectives are cheap functions called in a propose/tell loop, and the Hyperband
decisions are checked against thresholds worked out by hand from W&B's rule (bands, floor(n/eta)-th best).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from src.sweeping.early_termination import EarlyTermination, hyperband_bands, make_early_termination
from src.sweeping.expand import format_override_value, sweep_points
from src.sweeping.search import (
    BayesSearch,
    ListSearch,
    PointSearch,
    make_search,
    optuna_distribution,
    startup_trials,
)
from src.sweeping.spec import Hyperband, SweepSpec, SweepSpecError, load_sweep_spec, parse_sweep_spec

REPO = Path(__file__).resolve().parents[1]
LOSS = {"name": "val/loss", "goal": "minimize"}
HB = {"type": "hyperband"}


def _spec(parameters: dict[str, Any], method: str = "bayes", **extra: Any) -> SweepSpec:
    return parse_sweep_spec({"method": method, "parameters": parameters, **extra}, source="s.yaml")


def _drain(search: PointSearch) -> list[dict[str, Any]]:
    points = []
    while (point := search.propose()) is not None:
        search.tell(len(points), 0.0, "ok")
        points.append(point)
    return points


# --- grid / random ------------------------------------------------------------------------------------------


SHIPPED_SWEEPS = sorted((REPO / "experiments/sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED_SWEEPS, ids=lambda p: p.stem)
def test_shipped_sweeps_propose_the_points_of_sweep_points(path: Path) -> None:
    spec = load_sweep_spec(path)
    if spec.method == "bayes":  # points come from the results: a bayes file must propose valid points
        search = make_search(spec, count=3, seed=3)
        assert isinstance(search, BayesSearch)
        point = search.propose()
        assert point is not None and set(point) == set(spec.parameter_names)
        format_override_value(point)
        return
    count = None if spec.method == "grid" else 5
    search = make_search(spec, count=count, seed=3)
    expected = sweep_points(spec, count=count, seed=3)
    assert isinstance(search, ListSearch) and search.total == len(expected)
    assert _drain(search) == expected


@pytest.mark.parametrize(("method", "count", "seed"), [("grid", None, 0), ("grid", 3, 0), ("random", 7, 11)])
def test_grid_and_random_equal_sweep_points(method: str, count: int | None, seed: int) -> None:
    spec = _spec({"a": {"values": [1, 2, 3]}, "b": {"min": 0, "max": 2}}, method=method)
    expected = sweep_points(spec, count=count, seed=seed)
    search = make_search(spec, count=count, seed=seed)
    proposed = [search.propose() for _ in expected]  # all outstanding at once (a parallel wave)
    assert proposed == expected
    assert search.propose() is None
    for i in reversed(range(len(proposed))):  # told in any order
        search.tell(i, float(i), "ok")
    assert search.propose() is None


def test_tell_checks_point_and_status() -> None:
    search = make_search(_spec({"a": {"values": [1, 2]}}, method="grid"), count=None, seed=0)
    search.propose()
    with pytest.raises(ValueError, match="point 1 was not proposed"):
        search.tell(1, 0.0, "ok")
    with pytest.raises(ValueError, match="status must be one of"):
        search.tell(0, 0.0, "done")
    search.tell(0, None, "failed")
    with pytest.raises(ValueError, match="already reported"):
        search.tell(0, 1.0, "ok")


@pytest.mark.parametrize(
    ("goal", "target", "values", "proposed"),
    [
        ("minimize", 0.5, [0.9, 0.5, 0.1], 2),  # 0.5 <= 0.5 reaches it: no third point
        ("maximize", 0.8, [0.5, 0.7, 0.81, 0.9], 3),
        ("maximize", 0.99, [0.5, 0.7, 0.81, 0.9], 4),  # never reached: every point runs
    ],
)
def test_metric_target_stops_grid(goal: str, target: float, values: list[float], proposed: int) -> None:
    spec = _spec(
        {"a": {"values": [0, 1, 2, 3]}}, method="grid", metric={"name": "m", "goal": goal, "target": target}
    )
    search = make_search(spec, count=None, seed=0)
    seen = 0
    while search.propose() is not None:
        search.tell(seen, values[seen], "ok")
        seen += 1
    assert seen == proposed


def test_a_failed_point_does_not_reach_the_target() -> None:
    spec = _spec(
        {"a": {"values": [0, 1]}}, method="grid", metric={"name": "m", "goal": "minimize", "target": 1}
    )
    search = make_search(spec, count=None, seed=0)
    search.propose()
    search.tell(0, 0.0, "failed")
    assert search.propose() == {"a": 1}


# --- bayes: spec --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"parameters": {"a": {"min": 0.0, "max": 1.0}}}, r"s\.yaml: method 'bayes' needs a 'metric'"),
        (
            {"parameters": {"a": {"value": 1}, "b": {"value": 2}}, "metric": LOSS},
            r"s\.yaml: method 'bayes' needs at least one parameter that varies",
        ),
        (
            {
                "parameters": {"a": {"distribution": "beta", "min": 0.0, "max": 1.0}},
                "metric": LOSS,
            },
            r"parameters\.a: distribution 'beta' is not supported",
        ),
    ],
)
def test_invalid_bayes_files_name_the_problem(data: dict[str, Any], match: str) -> None:
    with pytest.raises(SweepSpecError, match=match):
        parse_sweep_spec({"method": "bayes", **data}, source="s.yaml")


def test_bayes_needs_a_count_or_run_cap() -> None:
    spec = _spec({"a": {"min": 0.0, "max": 1.0}}, metric=LOSS)
    with pytest.raises(SweepSpecError, match=r"s\.yaml: method 'bayes' needs a number of points.*--count"):
        make_search(spec, count=None, seed=0)
    capped = _spec({"a": {"min": 0.0, "max": 1.0}}, metric=LOSS, run_cap=3)
    assert make_search(capped, count=None, seed=0).total == 3
    assert make_search(capped, count=2, seed=0).total == 2


def test_bayes_warns_that_probabilities_are_not_used() -> None:
    with pytest.warns(UserWarning, match=r"parameters\.a\.probabilities.*without weights"):
        _spec({"a": {"values": [1, 2], "probabilities": [0.9, 0.1]}}, metric=LOSS)


# --- bayes: search space ------------------------------------------------------------------------------------


def test_optuna_distributions_follow_the_wandb_specs() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    spec = _spec(
        {
            "cat": {"values": ["sgd", [1, 2], {"k": 1}]},
            "n": {"min": 1, "max": 5},
            "u": {"min": 0.5, "max": 2.5},
            "lv": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
            "iv": {"distribution": "inv_log_uniform_values", "min": 1e-5, "max": 1e-1},
            "le": {"distribution": "log_uniform", "min": -3.0, "max": 0.0},
            "z": {"distribution": "normal", "mu": 1.0, "sigma": 2.0},
            "c": {"value": "fixed"},
        },
        metric=LOSS,
    )
    dists = {p.name: optuna_distribution(p) for p in spec.parameters}
    assert dists["cat"] == CategoricalDistribution((0, 1, 2))
    assert dists["n"] == IntDistribution(1, 5)
    assert dists["u"] == FloatDistribution(0.5, 2.5)
    assert dists["lv"] == FloatDistribution(1e-5, 1e-1, log=True)
    assert dists["iv"] == FloatDistribution(1e-5, 1e-1, log=True)  # log(1/X) uniform is X log-uniform
    assert dists["le"] == FloatDistribution(-3.0, 0.0)  # the exponent, as W&B's min/max
    assert (
        isinstance(dists["z"], FloatDistribution) and 0 < dists["z"].low < 0.001 and dists["z"].high > 0.999
    )
    assert dists["c"] is None  # constants are not searched


def test_bayes_points_respect_bounds_types_and_scales() -> None:
    spec = _spec(
        {
            "cat": {"values": ["sgd", [1, 2], {"k": 1}]},
            "n": {"min": 1, "max": 5},
            "u": {"min": 0.5, "max": 2.5},
            "lv": {"distribution": "log_uniform_values", "min": 1e-6, "max": 1.0},
            "le": {"distribution": "log_uniform", "min": -3.0, "max": 0.0},
            "iv": {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 100.0},
            "qu": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 2},
            "ql": {"distribution": "q_log_uniform_values", "min": 0.01, "max": 1.0, "q": 0.05},
            "z": {"distribution": "normal", "mu": 1.0, "sigma": 2.0},
            "ln": {"distribution": "log_normal", "mu": 0.0, "sigma": 1.0},
            "c": {"value": "fixed"},
        },
        metric=LOSS,
    )
    search = make_search(spec, count=4, seed=0)
    points = []
    for i in range(4):
        point = search.propose()
        assert point is not None
        points.append(point)
        search.tell(i, float(point["u"]) + math.log(point["lv"]), "ok")
    for p in points:
        assert list(p) == spec.parameter_names
        assert p["cat"] in (["sgd", [1, 2], {"k": 1}]) and p["c"] == "fixed"
        assert type(p["n"]) is int and 1 <= p["n"] <= 5
        assert type(p["u"]) is float and 0.5 <= p["u"] <= 2.5
        assert type(p["lv"]) is float and 1e-6 <= p["lv"] <= 1.0
        assert math.exp(-3.0) <= p["le"] <= 1.0
        assert type(p["iv"]) is float and 0.01 <= p["iv"] <= 100.0
        assert type(p["qu"]) is int and p["qu"] % 2 == 0 and 0 <= p["qu"] <= 10
        assert type(p["ql"]) is float and abs(p["ql"] / 0.05 - round(p["ql"] / 0.05)) < 1e-9
        assert abs(p["z"] - 1.0) < 2.0 * 4.8 and p["ln"] > 0
        for value in p.values():
            format_override_value(value)  # every value can be written as a key=value override


def test_bayes_start_up_points_follow_the_log_scale() -> None:
    # Before any point is reported every proposal is a random start-up draw. On a log scale half of them fall
    # below 1e-3 in [1e-6, 1]; a linear scale would put 0.1 % there.
    spec = _spec({"lv": {"distribution": "log_uniform_values", "min": 1e-6, "max": 1.0}}, metric=LOSS)
    search = make_search(spec, count=40, seed=0)
    values = [search.propose()["lv"] for _ in range(40)]  # type: ignore[index]
    assert 12 <= sum(v < 1e-3 for v in values) <= 28
    assert startup_trials(40) == 10 and startup_trials(12) == 3 and startup_trials(4) == 2


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_inv_log_uniform_values_is_log_uniform_in_the_values(method: str) -> None:
    # W&B: log(1/X) uniform between log(1/max) and log(1/min); so X lies in [min, max], log-uniformly.
    spec = _spec(
        {"iv": {"distribution": "inv_log_uniform_values", "min": 1e-4, "max": 1.0}}, method, metric=LOSS
    )
    search = make_search(spec, count=40, seed=2)
    values = [search.propose()["iv"] for _ in range(40)]  # type: ignore[index]
    assert all(1e-4 <= v <= 1.0 for v in values)
    assert (
        12 <= sum(v < 1e-2 for v in values) <= 28
    )  # half below the geometric middle and startup_trials(12) == 3 and startup_trials(4) == 2


def _bowl(point: dict[str, Any]) -> float:
    """Minimum 0 at x = 0.3, lr = 1e-3 (log scale), opt = adam."""
    return (
        (point["x"] - 0.3) ** 2
        + 0.1 * (math.log10(point["lr"]) + 3) ** 2
        + (0.0 if point["opt"] == "adam" else 0.5)
    )


BOWL = {
    "x": {"min": -2.0, "max": 2.0},
    "lr": {"distribution": "log_uniform_values", "min": 1e-6, "max": 1.0},
    "opt": {"values": ["sgd", "adam"]},
}


def _best(search: PointSearch, budget: int) -> float:
    best = math.inf
    for i in range(budget):
        point = search.propose()
        assert point is not None
        value = _bowl(point)
        best = min(best, value)
        search.tell(i, value, "ok")
    assert search.propose() is None
    return best


def test_bayes_finds_a_better_optimum_than_random_with_the_same_budget() -> None:
    budget = 12
    bayes = _best(make_search(_spec(BOWL, metric=LOSS), count=budget, seed=0), budget)
    random = _best(make_search(_spec(BOWL, method="random", metric=LOSS), count=budget, seed=0), budget)
    assert bayes < random / 2, (bayes, random)
    assert bayes < 0.05


def test_bayes_maximize_and_failed_points() -> None:
    from optuna.trial import TrialState

    spec = _spec({"x": {"min": -1.0, "max": 1.0}}, metric={"name": "acc", "goal": "maximize"})
    search = make_search(spec, count=6, seed=1)
    assert isinstance(search, BayesSearch)
    outcomes = [
        (0.2, "ok"),
        (None, "failed"),
        (0.5, "failed"),
        (None, "ok"),
        (math.nan, "ok"),
        (0.1, "stopped_early"),
    ]
    for i, (value, status) in enumerate(outcomes):
        assert search.propose() is not None
        search.tell(i, value, status)
    trials = search.study.get_trials()
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.FAIL,  # no value: never a made-up one
        TrialState.FAIL,  # failed, even with a value
        TrialState.FAIL,
        TrialState.FAIL,  # NaN
        TrialState.COMPLETE,  # stopped early: the value it had reached
    ]
    assert [t.user_attrs["status"] for t in trials] == [s for _, s in outcomes]
    assert search.study.best_value == 0.2  # maximize


def test_bayes_is_deterministic_for_a_seed_and_several_points_can_be_outstanding() -> None:
    spec = _spec(BOWL, metric=LOSS)

    def waves(seed: int, count: int) -> list[dict[str, Any]]:
        search = make_search(spec, count=count, seed=seed)
        points: list[dict[str, Any]] = []
        while True:
            wave = [p for p in (search.propose() for _ in range(3)) if p is not None]
            if not wave:
                return points
            for i, point in enumerate(wave):
                search.tell(len(points) + i, _bowl(point), "ok")
            points.extend(wave)

    first, again = waves(5, 6), waves(5, 6)
    assert len(first) == 6
    assert first == again
    assert waves(6, 3) != first[:3]
    # the second wave comes from the Gaussian process (3 points reported >= 2 start-up points), proposed
    # while the others of the wave are outstanding: they are distinct
    gp_wave = first[3:]
    assert len({(p["x"], p["lr"], p["opt"]) for p in gp_wave}) == 3


def test_bayes_stops_at_the_target() -> None:
    spec = _spec({"x": {"min": 0.0, "max": 1.0}}, metric={"name": "m", "goal": "minimize", "target": 0.5})
    search = make_search(spec, count=10, seed=0)
    told = 0
    while search.propose() is not None:
        search.tell(told, 1.0 if told < 2 else 0.4, "ok")
        told += 1
    assert told == 3


def test_bayes_resumes_from_storage(tmp_path: Path) -> None:
    from optuna.trial import TrialState

    db = tmp_path / "sweep" / "optuna.db"
    spec = _spec({"x": {"min": -2.0, "max": 2.0}}, metric=LOSS, name="bowl")
    first = make_search(spec, count=5, seed=0, storage=db)
    assert not db.parent.exists()  # nothing is written before the first proposal
    points = [first.propose(), first.propose()]
    first.tell(0, 1.0, "ok")
    del first  # the sweep stops with point 1 still running

    second = make_search(spec, count=5, seed=0, storage=db)
    assert second.total == 4  # 5 minus the 1 that ended; the interrupted one does not count
    more = []
    while (point := second.propose()) is not None:
        second.tell(len(more), (point["x"] - 0.3) ** 2, "ok")
        more.append(point)
    assert len(more) == 4
    # still a start-up (random) point, but not a redraw of the first session's: the seed mixes in the study
    assert more[0] not in points
    trials = second.study.get_trials()  # type: ignore[attr-defined]
    complete, fail = TrialState.COMPLETE, TrialState.FAIL
    assert [t.state for t in trials] == [complete, fail, complete, complete, complete, complete]
    assert "status" not in trials[1].user_attrs  # interrupted, marked failed on resume
    assert [t.user_attrs["point"] for t in trials] == points + more

    third = make_search(spec, count=5, seed=0, storage=db)
    assert third.total == 0 and third.propose() is None
    assert make_search(spec, count=7, seed=0, storage=db).total == 2  # a larger count continues

    other = _spec({"x": {"min": -1.0, "max": 1.0}}, metric=LOSS, name="bowl")
    with pytest.raises(SweepSpecError, match=r"optuna\.db: study 'bowl' holds a sweep with other parameters"):
        make_search(other, count=5, seed=0, storage=db)
    flipped = _spec({"x": {"min": -2.0, "max": 2.0}}, metric={**LOSS, "goal": "maximize"}, name="bowl")
    with pytest.raises(SweepSpecError, match=r"another metric"):
        make_search(flipped, count=5, seed=0, storage=db)


def test_a_storage_that_is_not_a_study_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "search.db"
    bad.write_text("not sqlite at all\n" * 100)
    spec = _spec({"x": {"min": 0.0, "max": 1.0}}, metric=LOSS)
    with pytest.raises(SweepSpecError, match=r"search\.db: cannot open it as an Optuna study"):
        make_search(spec, count=3, seed=0, storage=bad)


def test_a_resumed_study_that_reached_the_target_proposes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "optuna.db"
    spec = _spec(
        {"x": {"min": 0.0, "max": 1.0}}, metric={"name": "m", "goal": "maximize", "target": 0.9}, name="t"
    )
    first = make_search(spec, count=5, seed=0, storage=db)
    first.propose()
    first.tell(0, 0.95, "ok")
    assert first.propose() is None
    assert make_search(spec, count=5, seed=0, storage=db).propose() is None


# --- Hyperband: spec ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("early_terminate", "metric", "match"),
    [
        ({"type": "hyperband", "min_iter": 3}, None, r"early_terminate: Hyperband needs a 'metric'"),
        ({"min_iter": 3}, LOSS, r"early_terminate\.type: must be 'hyperband'"),
        ({"type": "median", "min_iter": 3}, LOSS, r"early_terminate\.type: must be 'hyperband'"),
        ({"type": "hyperband", "min_iter": 3, "bands": [1]}, LOSS, r"early_terminate: unknown key.*bands"),
        ({"type": "hyperband"}, LOSS, r"early_terminate: give 'min_iter', or 'max_iter' and 's'"),
        ({"type": "hyperband", "max_iter": 27}, LOSS, r"early_terminate: max_iter needs 's'"),
        (
            {"type": "hyperband", "min_iter": 0},
            LOSS,
            r"early_terminate\.min_iter: must be a positive integer",
        ),
        (
            {"type": "hyperband", "max_iter": 9, "s": 1.5},
            LOSS,
            r"early_terminate\.s: must be a positive integer",
        ),
        (
            {"type": "hyperband", "min_iter": 1, "eta": 1},
            LOSS,
            r"early_terminate\.eta: must be a number greater",
        ),
        (
            {"type": "hyperband", "min_iter": 1, "strict": "yes"},
            LOSS,
            r"early_terminate\.strict: must be true",
        ),
        (
            {"type": "hyperband", "max_iter": 2, "s": 2},
            LOSS,
            r"early_terminate: max_iter \(2\) / eta \(3\) is below 1",
        ),
        ("hyperband", LOSS, r"early_terminate: must be a mapping"),
    ],
)
def test_invalid_early_terminate_names_the_file_and_key(
    early_terminate: Any, metric: Any, match: str
) -> None:
    data: dict[str, Any] = {
        "method": "grid",
        "parameters": {"a": {"values": [1]}},
        "early_terminate": early_terminate,
    }
    if metric is not None:
        data["metric"] = metric
    with pytest.raises(SweepSpecError, match=r"s\.yaml: " + match):
        parse_sweep_spec(data, source="s.yaml")


def test_early_terminate_defaults_and_absence() -> None:
    spec = _spec(
        {"a": {"values": [1]}},
        method="grid",
        metric=LOSS,
        early_terminate={"type": "hyperband", "min_iter": 2},
    )
    assert spec.early_terminate == Hyperband(eta=3, strict=True, min_iter=2)
    stopper = make_early_termination(spec)
    assert stopper is not None and stopper.goal == "minimize"
    assert make_early_termination(_spec({"a": {"values": [1]}}, method="grid", metric=LOSS)) is None
    with pytest.warns(UserWarning, match="min_iter is not used"):
        both = _spec(
            {"a": {"values": [1]}},
            method="grid",
            metric=LOSS,
            early_terminate={"type": "hyperband", "max_iter": 27, "s": 2, "min_iter": 1},
        )
    assert make_early_termination(both).bands() == [3, 9]  # type: ignore[union-attr]


# --- Hyperband: bands and decisions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "up_to", "bands"),
    [
        (Hyperband(max_iter=27, s=2), None, [3, 9]),  # 27/3, 27/9
        (Hyperband(max_iter=27, s=5), None, [1, 3, 9]),  # 27/27 = 1, then 1/3 < 1 stops
        (Hyperband(max_iter=81, s=3, eta=3), None, [3, 9, 27]),
        (Hyperband(max_iter=10, s=3, eta=2), None, [1, 2, 5]),  # 5, 2.5 -> 2, 1.25 -> 1
        (Hyperband(min_iter=3), 100, [3, 9, 27, 81]),
        (Hyperband(min_iter=2, eta=2), 20, [2, 4, 8, 16]),
        (Hyperband(min_iter=1, eta=1.5), 4, [1, 1, 2, 3]),  # 1, 1.5, 2.25, 3.375 rounded down
    ],
)
def test_hyperband_bands(config: Hyperband, up_to: int | None, bands: list[int]) -> None:
    assert hyperband_bands(config, up_to) == bands


def _feed(stopper: EarlyTermination, point: int, values: list[float]) -> list[bool]:
    return [stopper.observe(point, i, v) for i, v in enumerate(values, start=1)]


def test_hyperband_max_iter_maximize_by_hand() -> None:
    # max_iter 9, s 2, eta 3: bands 9/3 = 3 and 3/3 = 1. At a band, the threshold is the floor(n/3)-th best
    # (0-based) of the n values logged at that iteration; a point worse than it stops.
    stopper = EarlyTermination(Hyperband(max_iter=9, s=2, eta=3, strict=True), "maximize")
    assert stopper.bands() == [1, 3]
    assert _feed(stopper, 0, [0.5, 0.6, 0.7, 0.8]) == [False] * 4  # alone, it is its own threshold
    # band 1: [0.55, 0.5] -> index 0 -> 0.55; band 3: [0.75, 0.7] -> 0.75: never worse
    assert _feed(stopper, 1, [0.55, 0.65, 0.75]) == [False] * 3
    # band 1: [0.55, 0.5, 0.3] -> index floor(3/3) = 1 -> 0.5; 0.3 is worse: stop
    assert _feed(stopper, 2, [0.3]) == [True]
    assert stopper.threshold(1) == 0.5
    # band 1: [0.55, 0.52, 0.5, 0.3] -> index floor(4/3) = 1 -> 0.52: not worse;
    # band 3: [0.75, 0.7, 0.65] -> index 1 -> 0.7, and 0.65 is worse: stop at iteration 3
    assert _feed(stopper, 3, [0.52, 0.6, 0.65]) == [False, False, True]
    assert stopper.threshold(3) == 0.7
    assert "band 3" in stopper.reason(3) and "worse than the threshold 0.7" in stopper.reason(3)


def test_hyperband_strict_and_not_strict_differ_by_hand() -> None:
    # Third point [0.8, 0.4, 0.6]: band 1 [0.8, 0.55, 0.5] -> 0.55, passed. Band 3 [0.75, 0.7, 0.6] -> index 1
    # -> 0.7: strict compares the value at iteration 3 (0.6): stop; not strict the best so far (0.8): go on.
    for strict, expected in ((True, [False, False, True]), (False, [False, False, False])):
        stopper = EarlyTermination(Hyperband(max_iter=9, s=2, strict=strict), "maximize")
        assert _feed(stopper, 0, [0.5, 0.6, 0.7]) == [False] * 3
        assert _feed(stopper, 1, [0.55, 0.65, 0.75]) == [False] * 3
        assert _feed(stopper, 2, [0.8, 0.4, 0.6]) == expected, strict


def test_hyperband_min_iter_minimize_by_hand() -> None:
    # min_iter 2, eta 2: bands 2, 4, 8, ...; threshold index floor(n/2).
    stopper = EarlyTermination(Hyperband(min_iter=2, eta=2), "minimize")
    _feed(stopper, 0, [1.0, 0.8, 0.7, 0.6])
    _feed(stopper, 1, [1.2, 1.0, 0.9, 0.85])
    assert stopper.observe(2, 1, 100.0) is False  # before the first band nothing stops
    # band 2: [0.8, 0.9, 1.0] -> index 1 -> 0.9; 0.9 is not worse
    assert stopper.observe(2, 2, 0.9) is False
    assert stopper.observe(2, 3, 0.95) is False  # still band 2, and strict looks at iteration 2
    # band 4: [0.6, 0.85, 0.88] -> index 1 -> 0.85; 0.88 is worse: stop
    assert stopper.observe(2, 4, 0.88) is True
    assert stopper.threshold(4) == 0.85
    assert stopper.history(2) == [100.0, 0.9, 0.95, 0.88]


def test_hyperband_rechecks_a_running_point_against_later_points() -> None:
    stopper = EarlyTermination(Hyperband(min_iter=1), "minimize")
    assert stopper.observe(0, 1, 5.0) is False
    stopper.observe(1, 1, 1.0)
    stopper.observe(2, 1, 2.0)
    # band 1: [1, 2, 5] -> index floor(3/3) = 1 -> 2; point 0 (5.0) is now worse
    assert stopper.should_stop(0) is True
    assert stopper.should_stop(1) is False


def test_hyperband_observations_in_order_non_finite_dropped() -> None:
    stopper = EarlyTermination(Hyperband(min_iter=1), "minimize")
    assert stopper.observe(0, 1, math.nan) is False  # dropped, as W&B does: no band reached yet
    assert stopper.history(0) == []
    stopper.observe(0, 2, 3.0)
    assert stopper.observe(0, 2, 3.0) is False  # the same value again (a re-read metrics file): no change
    assert stopper.history(0) == [3.0]
    assert stopper.observe(0, 1, math.nan) is False  # an earlier one again (re-read from the start)
    with pytest.raises(ValueError, match="iteration 2 was observed as 3.0, now 4.0"):
        stopper.observe(0, 2, 4.0)
    with pytest.raises(ValueError, match="iteration 4 observed after iteration 2"):
        stopper.observe(0, 4, 1.0)
    with pytest.raises(ValueError, match="positive integer"):
        stopper.observe(0, 0, 1.0)


def test_hyperband_goal_only_sets_which_side_is_better() -> None:
    values = np.array([[3.0, 2.0], [1.0, 0.5], [2.0, 1.5], [4.0, 0.1]])
    decisions = {}
    for goal, sign in (("minimize", 1.0), ("maximize", -1.0)):
        spec = _spec(
            {"a": {"values": [1]}},
            method="grid",
            metric={"name": "m", "goal": goal},
            early_terminate={"type": "hyperband", "min_iter": 1},
        )
        stopper = make_early_termination(spec)
        assert stopper is not None
        decisions[goal] = [_feed(stopper, i, list(sign * row)) for i, row in enumerate(values)]
    # mirrored values give the same decisions: the goal only sets which side is better
    # min_iter 1, eta 3 (bands 1, 3, ...): band 1 for the third point [1, 2, 3] -> index 1 -> 2: not worse;
    # for the fourth [1, 2, 3, 4] -> index floor(4/3) = 1 -> 2: 4 is worse (strict keeps judging iteration 1)
    assert decisions["minimize"] == [[False, False], [False, False], [False, False], [True, True]]
    assert decisions["maximize"] == decisions["minimize"]


def test_no_warning_for_a_valid_bayes_file_with_early_terminate() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = _spec(
            BOWL,
            metric=LOSS,
            run_cap=4,
            early_terminate={"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3},
        )
    assert spec.method == "bayes" and spec.run_cap == 4
    assert make_early_termination(spec).bands() == [3, 9]  # type: ignore[union-attr]
