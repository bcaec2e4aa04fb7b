"""Sweep methods as a propose/tell loop: grid and random (fixed lists of points) and bayes (Optuna).

The driver asks :meth:`PointSearch.propose` for the next point, runs it, and reports its final metric with
:meth:`PointSearch.tell`. Several points may be outstanding at once (a parallel launcher proposes a wave and
tells them all afterwards). Grid and random points are fixed in advance; bayes uses what it is told to choose
the next points. With ``metric.target`` in the file, no point is proposed once a point has reached it (W&B:
"the sweep will finish once any run reaches the goal").

Bayes follows W&B's engine where it is defined: every parameter is searched in the coordinate W&B's Gaussian
process uses (the parameter's distribution; normal-type ones through their quantile), constants are not
searched, and the surrogate is a Gaussian process (Optuna's :class:`optuna.samplers.GPSampler`), which also
accounts for points still running when a wave is proposed.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import statistics
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.sweeping.expand import quantize, sweep_points
from src.sweeping.spec import Metric, Parameter, SweepSpec, SweepSpecError

__all__ = [
    "STATUSES",
    "BayesSearch",
    "ListSearch",
    "PointSearch",
    "make_search",
    "optuna_distribution",
    "reached_target",
]

STATUSES = frozenset({"ok", "failed", "stopped_early"})
QUANTILE_EPS = 1e-6  # normal-type parameters are searched on quantiles in [eps, 1 - eps] (about +-4.75 sigma)


class PointSearch(ABC):
    """Proposes sweep points one at a time and learns the outcome of each.

    ``total`` is the number of points when known in advance (grid, random), else the cap on them.
    """

    total: int | None

    @abstractmethod
    def propose(self) -> dict[str, Any] | None:
        """The next point's ``{parameter name: value}``, or None when the sweep is done."""

    @abstractmethod
    def tell(self, point: int, value: float | None, status: str) -> None:
        """Report point ``point`` (0-based, in proposal order): its final metric and how it ended.

        ``value`` is None when the point has no metric; ``status`` is ``ok``, ``failed`` or ``stopped_early``.
        """


class _Told:
    """Bookkeeping shared by the searches: points proposed and reported, and whether the target was hit."""

    def __init__(self, metric: Metric | None) -> None:
        self.metric = metric
        self.proposed = 0
        self.told: dict[int, tuple[float | None, str]] = {}
        self.target_reached = False

    def check(self, point: int, value: float | None, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)} (got {status!r})")
        if isinstance(point, bool) or not isinstance(point, int) or not 0 <= point < self.proposed:
            raise ValueError(f"point {point!r} was not proposed (points proposed so far: {self.proposed})")
        if point in self.told:
            raise ValueError(f"point {point} was already reported")
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise ValueError(f"point {point}: value must be a number or None (got {value!r})")

    def record(self, point: int, value: float | None, status: str) -> None:
        value = None if value is None else float(value)
        self.told[point] = (value, status)
        if status != "failed" and reached_target(self.metric, value):
            self.target_reached = True


class ListSearch(PointSearch):
    """A search whose points are fixed in advance (grid, random): proposes them in order.

    Stops early only when ``metric.target`` is reached by a reported point.
    """

    def __init__(self, points: Sequence[dict[str, Any]], metric: Metric | None = None) -> None:
        self._points = [dict(p) for p in points]
        self.total = len(self._points)
        self._state = _Told(metric)

    @property
    def target_reached(self) -> bool:
        """Whether a reported point reached ``metric.target`` (no more points are proposed then)."""
        return self._state.target_reached

    def propose(self) -> dict[str, Any] | None:
        if self._state.target_reached or self._state.proposed >= len(self._points):
            return None
        point = dict(self._points[self._state.proposed])
        self._state.proposed += 1
        return point

    def tell(self, point: int, value: float | None, status: str) -> None:
        self._state.check(point, value, status)
        self._state.record(point, value, status)


# --- bayes --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dimension:
    """How one sweep parameter is searched: an Optuna distribution over a coordinate, and back to a value."""

    param: Parameter
    distribution: Any  # optuna.distributions.BaseDistribution

    def value(self, coordinate: Any) -> Any:
        """The parameter's value (a plain Python object) at ``coordinate``."""
        p = self.param
        dist = p.distribution
        if dist == "categorical":
            return copy.deepcopy(p.values[int(coordinate)])
        if dist == "int_uniform":
            return int(coordinate)
        if dist == "log_uniform":
            x = math.exp(float(coordinate))
        elif dist in ("normal", "q_normal", "log_normal", "q_log_normal"):
            x = statistics.NormalDist(float(p.mu), float(p.sigma)).inv_cdf(float(coordinate))
            if dist in ("log_normal", "q_log_normal"):
                x = math.exp(x)
        else:  # uniform, q_uniform, log_uniform_values, q_log_uniform_values, inv_log_uniform_values
            x = float(coordinate)
        if dist.startswith("q_"):
            return quantize(x, p)
        # 15 significant digits: exp(log(1e-4)) is written as 0.0001, not 0.00010000000000000009
        return float(f"{x:.15g}")


def optuna_distribution(param: Parameter) -> Any:
    """The Optuna distribution bayes searches ``param`` with (None for a constant, which is not searched).

    values -> categorical over the value indices; int min/max -> int; uniform (and q_uniform, quantised
    after) -> float; log_uniform_values (and q_, and inv_log_uniform_values, the same distribution) -> log
    float; log_uniform -> float over the exponent;
    normal, log_normal and their q_ forms -> the quantile of the distribution, as in W&B's engine.
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dist = param.distribution
    if dist == "constant":
        return None
    if dist == "categorical":
        return CategoricalDistribution(tuple(range(len(param.values))))
    if dist == "int_uniform":
        return IntDistribution(int(param.min), int(param.max))  # type: ignore[arg-type]
    if dist in ("uniform", "q_uniform", "log_uniform"):
        return FloatDistribution(float(param.min), float(param.max))  # type: ignore[arg-type]
    if dist in ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values"):
        return FloatDistribution(float(param.min), float(param.max), log=True)  # type: ignore[arg-type]
    if dist in ("normal", "q_normal", "log_normal", "q_log_normal"):
        return FloatDistribution(QUANTILE_EPS, 1.0 - QUANTILE_EPS)
    raise SweepSpecError(f"parameter {param.name!r}: distribution {dist!r} cannot be searched by bayes")


def _space_signature(spec: SweepSpec) -> str:
    """JSON naming the search space and objective; stored in the study so a mismatched resume is refused."""
    params = [
        {
            "name": p.name,
            "distribution": p.distribution,
            "value": p.value,
            "values": list(p.values),
            "min": p.min,
            "max": p.max,
            "mu": p.mu,
            "sigma": p.sigma,
            "q": p.q,
        }
        for p in spec.parameters
    ]
    metric = {"name": spec.metric.name, "goal": spec.metric.goal} if spec.metric else None
    return json.dumps({"parameters": params, "metric": metric}, sort_keys=True, default=str)


def startup_trials(cap: int) -> int:
    """Points proposed at random before the Gaussian process is used: a quarter of the budget, 2 to 10."""
    return min(10, max(2, cap // 4))


class BayesSearch(PointSearch):
    """W&B's ``bayes`` as an Optuna study with a Gaussian-process sampler (ask/tell, points may overlap).

    ``cap`` bounds the points that end in the study (``--count`` / ``run_cap``); with ``storage`` (an sqlite
    file) the study persists, and a new search on the same file continues it: the points already ended count
    towards ``cap`` and inform the sampler, and points that were proposed but never reported (the sweep was
    stopped while they ran) are marked failed, do not count, and are replaced by new proposals.
    """

    def __init__(self, spec: SweepSpec, *, cap: int, seed: int, storage: Path | None = None) -> None:
        if spec.metric is None:  # pragma: no cover - spec validation requires it
            raise SweepSpecError(f"{spec.source}: method 'bayes' needs a 'metric'")
        self.spec = spec
        self.storage = None if storage is None else Path(storage)
        self._cap = cap
        self._seed = seed
        self._dimensions = {
            p.name: _Dimension(p, d) for p in spec.parameters if (d := optuna_distribution(p)) is not None
        }
        self._constants = {p.name: p.value for p in spec.parameters if p.distribution == "constant"}
        self._state = _Told(spec.metric)
        self._trials: list[Any] = []  # point (this search's proposal index) -> its optuna.trial.Trial
        self._study: Any = None
        self.total = cap
        # An existing study file is opened now (to continue it, and to know how many points are left); a new
        # one is created at the first proposal, so making the search writes nothing (a dry run, an error).
        if self.storage is None or self.storage.exists():
            self._open()

    def _open(self) -> Any:
        """Create or load the study (once)."""
        if self._study is not None:
            return self._study
        import optuna

        # the sweep prints its own line per point; Optuna's INFO lines ("A new study created ...") add noise
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        db = None
        if self.storage is not None:
            self.storage.parent.mkdir(parents=True, exist_ok=True)
            try:
                db = optuna.storages.RDBStorage(f"sqlite:///{self.storage.resolve()}")
            except Exception as err:  # sqlalchemy's errors for a file that is not an Optuna sqlite study
                raise SweepSpecError(
                    f"{self.storage}: cannot open it as an Optuna study (sqlite): {err}"
                ) from err
        existing = self._existing_trials(optuna, db)
        # The seed mixes in the study's size, so a resumed study does not redraw the points it started with.
        sampler_seed = int(np.random.SeedSequence([self._seed, existing]).generate_state(1)[0])
        sampler = optuna.samplers.GPSampler(
            seed=sampler_seed,
            n_startup_trials=startup_trials(self._cap),
            independent_sampler=optuna.samplers.RandomSampler(seed=sampler_seed),
            warn_independent_sampling=False,
        )
        self._study = optuna.create_study(
            study_name=self.spec.name,
            storage=db,
            sampler=sampler,
            direction=self.spec.metric.goal,  # type: ignore[union-attr]
            load_if_exists=True,
        )
        self._check_resume(_space_signature(self.spec))
        self.total = max(0, self._cap - self._close_interrupted())
        return self._study

    def _existing_trials(self, optuna: Any, db: Any) -> int:
        if db is None:
            return 0
        try:
            study = optuna.load_study(study_name=self.spec.name, storage=db)
        except KeyError:
            return 0
        return len(study.get_trials(deepcopy=False))

    def _check_resume(self, signature: str) -> None:
        stored = self._study.user_attrs.get("sweep_space")
        if stored is None:
            if self._study.get_trials(deepcopy=False):
                raise SweepSpecError(
                    f"{self.storage}: study {self.spec.name!r} was not written by a sweep; use another file"
                )
            self._study.set_user_attr("sweep_space", signature)
            return
        if stored != signature:
            raise SweepSpecError(
                f"{self.storage}: study {self.spec.name!r} holds a sweep with other parameters or another "
                f"metric than {self.spec.source}; continue it with the file it was started with, or use "
                "a new storage file"
            )

    def _close_interrupted(self) -> int:
        """Fail the trials a stopped sweep left running; return how many trials ended (they count to the cap).

        Every reported trial carries a ``status`` user attribute; a running trial without one was interrupted.
        """
        from optuna.trial import TrialState

        ended = 0
        for trial in self._study.get_trials(deepcopy=False):
            if trial.state == TrialState.RUNNING:
                self._study.tell(trial.number, state=TrialState.FAIL)
            elif "status" in trial.user_attrs:
                ended += 1
                if trial.state == TrialState.COMPLETE and reached_target(self.spec.metric, trial.value):
                    self._state.target_reached = True
        return ended

    @property
    def study(self) -> Any:
        """The Optuna study (read it with ``study.trials_dataframe()``, ``study.best_trial``)."""
        return self._open()

    @property
    def target_reached(self) -> bool:
        """Whether a point (this search's or a stored one) reached ``metric.target``."""
        return self._state.target_reached

    def propose(self) -> dict[str, Any] | None:
        self._open()
        if self._state.target_reached or self._state.proposed >= (self.total or 0):
            return None
        trial = self._study.ask({name: d.distribution for name, d in self._dimensions.items()})
        point: dict[str, Any] = {}
        for p in self.spec.parameters:
            if p.name in self._constants:
                point[p.name] = self._constants[p.name]
            else:
                point[p.name] = self._dimensions[p.name].value(trial.params[p.name])
        trial.set_user_attr("point", json.loads(json.dumps(point, default=str)))
        self._trials.append(trial)
        self._state.proposed += 1
        return point

    def tell(self, point: int, value: float | None, status: str) -> None:
        """Report a point: a finite value of an ``ok`` or ``stopped_early`` point completes its trial (a
        stopped point's value is what it had reached); anything else (failed, no value, NaN) fails the trial.
        """
        from optuna.trial import TrialState

        self._state.check(point, value, status)
        trial = self._trials[point]
        trial.set_user_attr("status", status)
        if status != "failed" and value is not None and not math.isnan(value):
            self._study.tell(trial, float(value))
        else:
            self._study.tell(trial, state=TrialState.FAIL)
        self._state.record(point, value, status)


def reached_target(metric: Metric | None, value: float | None) -> bool:
    """Whether ``value`` reaches ``metric.target``: at or below it (minimize), at or above it (maximize)."""
    if metric is None or metric.target is None or value is None or not math.isfinite(value):
        return False
    return value <= metric.target if metric.goal == "minimize" else value >= metric.target


def make_search(spec: SweepSpec, *, count: int | None, seed: int, storage: Path | None = None) -> PointSearch:
    """The search for ``spec.method``.

    grid/random: the points of :func:`src.sweeping.expand.sweep_points` (same points, same order);
    ``storage`` is not used. bayes: an Optuna study (:class:`BayesSearch`) of at most ``min(count,
    run_cap)`` points, kept in the sqlite file ``storage`` when given so that a stopped sweep continues where
    it left off. With ``metric.target``, every method stops proposing once a point reaches it.
    """
    if spec.method in ("grid", "random"):
        return ListSearch(sweep_points(spec, count=count, seed=seed), spec.metric)
    if spec.method == "bayes":
        caps = [c for c in (count, spec.run_cap) if c is not None]
        if not caps:
            raise SweepSpecError(
                f"{spec.source}: method 'bayes' needs a number of points: pass --count N or set 'run_cap'"
            )
        if isinstance(count, bool) or (count is not None and (not isinstance(count, int) or count < 0)):
            raise ValueError(f"count must be a non-negative integer (got {count!r})")
        return BayesSearch(spec, cap=min(caps), seed=seed, storage=storage)
    raise SweepSpecError(f"{spec.source}: method {spec.method!r} has no local search")
