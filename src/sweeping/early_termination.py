"""Hyperband early termination with W&B's rule (``early_terminate: {type: hyperband, ...}``).

Bands are iteration counts, an iteration being one logged value of the sweep metric (epochs, validation
rounds: whatever the run logs), not the step counter:

* ``max_iter`` and ``s``: ``max_iter/eta, max_iter/eta^2, ...`` (``s`` of them, rounded down, dropping
  those below 1), in increasing order; ``max_iter: 27, s: 2, eta: 3`` gives bands 3 and 9.
* ``min_iter``: ``min_iter, min_iter*eta, min_iter*eta^2, ...`` (rounded down); ``min_iter: 3`` gives
  3, 9, 27, ...

At band ``b`` the threshold is taken from the ``b``-th values of every point that has logged at least ``b``
values (this point included, finished and stopped points too): sorted from best to worst, the value at
position ``floor(n/eta)`` (0-based) of the ``n`` of them, so roughly the top ``1/eta`` are kept. A running
point that has passed band ``b`` (its last band so far) is stopped when its value is worse than that
threshold: with ``strict`` (W&B's default) its ``b``-th value, without it the best value it has logged so
far. Values that are not finite numbers are dropped, as W&B does, and do not count as iterations.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from src.sweeping.spec import Hyperband, SweepSpec

__all__ = ["EarlyTermination", "hyperband_bands", "make_early_termination"]

_MAX_BANDS = 100  # W&B's min_iter form lists this many bands


def hyperband_bands(config: Hyperband, up_to: int | None = None) -> list[int]:
    """The band iterations of ``config`` in increasing order (``min_iter`` form: those ``<= up_to``)."""
    eta = config.eta
    if config.max_iter is not None:
        bands = []
        band: float = config.max_iter
        for _ in range(config.s or 0):
            band /= eta
            if band < 1:
                break
            bands.append(int(band))
        return sorted(bands)
    if config.min_iter is None:
        raise ValueError("hyperband needs min_iter, or max_iter and s")
    return list(_min_iter_bands(config.min_iter, eta, up_to))


def _min_iter_bands(min_iter: int, eta: float, up_to: int | None) -> Iterator[int]:
    band: float = min_iter
    for _ in range(_MAX_BANDS):
        if up_to is not None and int(band) > up_to:
            return
        yield int(band)
        band *= eta


class EarlyTermination:
    """Hyperband stop decisions for the points of one sweep, from the metric values they log.

    The driver calls :meth:`observe` with each new value of the sweep metric a point logs; True means stop
    that point now. Histories are kept for every point (finished and stopped ones too), since thresholds use
    them all. :meth:`should_stop` re-checks a running point against the current thresholds (W&B re-checks
    running runs every few minutes, so a point can be stopped after other points have logged).
    """

    def __init__(self, config: Hyperband, goal: str) -> None:
        if goal not in ("minimize", "maximize"):
            raise ValueError(f"goal must be 'minimize' or 'maximize' (got {goal!r})")
        self.config = config
        self.goal = goal
        self._sign = -1.0 if goal == "maximize" else 1.0  # internally smaller is better
        self._histories: dict[int, list[float]] = {}  # finite values, sign-adjusted
        self._raw: dict[int, list[float]] = {}  # every value observed per point, as logged

    @property
    def r(self) -> float:
        """The fraction of points kept at each band (``1/eta``)."""
        return 1.0 / self.config.eta

    def bands(self, up_to: int | None = None) -> list[int]:
        """The band iterations (``min_iter`` form: those ``<= up_to``)."""
        return hyperband_bands(self.config, up_to)

    def history(self, point: int) -> list[float]:
        """The finite metric values point ``point`` has logged, as logged (goal direction not applied)."""
        return [self._sign * v for v in self._histories.get(point, [])]

    def observe(self, point: int, iteration: int, value: float) -> bool:
        """Record the ``iteration``-th (1-based) value of the metric for ``point``; True: stop it now.

        Iterations of a point come in order 1, 2, 3, ...; reporting an earlier one again with the same value
        changes nothing (a driver re-reading a metrics file may do that), with another value is an error.
        """
        if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 1:
            raise ValueError(f"iteration must be a positive integer (got {iteration!r})")
        raw = self._raw.setdefault(point, [])
        value = float(value)
        if iteration <= len(raw):
            if not _same(raw[iteration - 1], value):
                raise ValueError(
                    f"point {point}: iteration {iteration} was observed as {raw[iteration - 1]!r}, "
                    f"now {value!r}"
                )
            return self.should_stop(point)
        if iteration != len(raw) + 1:
            raise ValueError(
                f"point {point}: iteration {iteration} observed after iteration {len(raw)}; observe each "
                "logged value of the metric once, in order"
            )
        raw.append(value)
        history = self._histories.setdefault(point, [])
        if math.isfinite(value):
            history.append(self._sign * value)
        return self.should_stop(point)

    def threshold(self, band: int) -> float:
        """The value a point must not be worse than at ``band`` (+-inf when no point has reached it)."""
        values = sorted(h[band - 1] for h in self._histories.values() if len(h) >= band)
        if not values:
            return math.inf * self._sign
        return self._sign * values[int(self.r * len(values))]

    def should_stop(self, point: int) -> bool:
        """Whether ``point`` is worse than the threshold of the last band it has passed (False before any)."""
        history = self._histories.get(point, [])
        bands = [b for b in self.bands(up_to=len(history)) if b <= len(history)]
        if not bands:
            return False
        band = bands[-1]
        threshold = self._sign * self.threshold(band)
        value = history[band - 1] if self.config.strict else min(history)
        return value > threshold

    def reason(self, point: int) -> str:
        """A one-line explanation of the decision for ``point`` (for the sweep index)."""
        history = self._histories.get(point, [])
        bands = [b for b in self.bands(up_to=len(history)) if b <= len(history)]
        if not bands:
            return f"hyperband: {len(history)} value(s) logged, no band reached yet"
        band = bands[-1]
        value = history[band - 1] if self.config.strict else min(history)
        word = "worse than" if self.should_stop(point) else "not worse than"
        kind = f"value at iteration {band}" if self.config.strict else "best value so far"
        return (
            f"hyperband: band {band}, {kind} {self._sign * value:g} is {word} the threshold "
            f"{self.threshold(band):g} ({self.goal}, eta={self.config.eta:g})"
        )


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def make_early_termination(spec: SweepSpec) -> EarlyTermination | None:
    """The sweep's early termination, or None when the file has no ``early_terminate``."""
    if spec.early_terminate is None:
        return None
    if spec.metric is None:  # pragma: no cover - spec validation requires a metric with early_terminate
        raise ValueError(f"{spec.source}: early_terminate needs a metric")
    return EarlyTermination(spec.early_terminate, spec.metric.goal)
