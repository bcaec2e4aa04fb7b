"""Local sweeps: read W&B sweep YAML files and expand them into ``key=value`` overrides for ``src.train``.

W&B sweeps need the W&B server even with the "local controller", so sweeps are expanded here (grid / random)
and run as ordinary runs by :mod:`src.sweep`; the same file still works with ``wandb sweep``/``wandb agent``.
Its parameters can be changed on the command line (:mod:`src.sweeping.overrides`).
"""

from src.sweeping.expand import (
    experiment_from_command,
    format_override_value,
    grid_points,
    point_to_overrides,
    random_points,
    sample_parameter,
    sweep_points,
)
from src.sweeping.overrides import ParameterOverride, apply_parameter_overrides, split_overrides
from src.sweeping.spec import Metric, Parameter, SweepSpec, SweepSpecError, load_sweep_spec, parse_sweep_spec

__all__ = [
    "Metric",
    "Parameter",
    "ParameterOverride",
    "SweepSpec",
    "SweepSpecError",
    "apply_parameter_overrides",
    "experiment_from_command",
    "format_override_value",
    "grid_points",
    "load_sweep_spec",
    "parse_sweep_spec",
    "point_to_overrides",
    "random_points",
    "sample_parameter",
    "split_overrides",
    "sweep_points",
]
