"""Sweeps: read W&B sweep YAML files, choose their points, and launch the runs.

Sweeps are expanded here (grid / random) or searched (bayes, :mod:`src.sweeping.search`) and run as ordinary
runs by :mod:`src.sweep` through a launcher (:mod:`src.sweeping.launchers`: local, SLURM through submitit,
or ``wandb agent``); the same file still works with ``wandb sweep``/``wandb agent``. Its parameters can be
changed on the command line (:mod:`src.sweeping.overrides`).
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
from src.sweeping.launchers import Job, Launcher, LauncherConfigError, LaunchResult, make_launcher
from src.sweeping.overrides import ParameterOverride, apply_parameter_overrides, split_overrides
from src.sweeping.spec import Metric, Parameter, SweepSpec, SweepSpecError, load_sweep_spec, parse_sweep_spec

__all__ = [
    "Job",
    "LaunchResult",
    "Launcher",
    "LauncherConfigError",
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
    "make_launcher",
    "parse_sweep_spec",
    "point_to_overrides",
    "random_points",
    "sample_parameter",
    "split_overrides",
    "sweep_points",
]
