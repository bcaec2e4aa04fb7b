"""Command-line front end shared by ``src.train`` and ``src.eval``: parse, compose, print or run."""

from __future__ import annotations

import copy
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.config.compose import ComposeResult, compose, list_experiments
from src.config.errors import ConfigError
from src.config.secrets import RunSecrets, env_name, override_key, redact_text, secret_keys
from src.papers.registry import discover
from src.utils.tables import to_markdown

USAGE = """usage: python -m src.{task} experiment=<name> [key=value ...] [group=option ...] [--print-config]

  experiment=<name>   an experiment file below experiments/ (without .yaml)
  key=value           override a value (struct mode: misspelt keys fail); +key=value adds a new key
  group=option        pick a group file, e.g. trainer=ddp_cpu, logger=none
  resume=<run dir>    continue a run from its last.ckpt (same run dir, same W&B run, exactly)
  --print-config      print the resolved config and exit (same as print_config=true)
"""


def parse_args(argv: Sequence[str]) -> tuple[str | None, list[str], bool]:
    """Split argv into the experiment name, the remaining overrides and the print-config flag."""
    experiment, overrides, print_config = None, [], False
    for arg in argv:
        if arg in ("--print-config", "--cfg", "-c"):
            print_config = True
        elif arg.startswith("experiment="):
            experiment = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            raise ConfigError(f"unknown option '{arg}'\n{USAGE}")
        else:
            overrides.append(arg)
    return experiment, overrides, print_config


def compose_from_args(argv: Sequence[str]) -> tuple[ComposeResult, bool]:
    """Compose the config named on the command line; ``resume=`` reuses the run's experiment and overrides."""
    experiment, overrides, print_config = parse_args(argv)
    resume = next((o.split("=", 1)[1] for o in overrides if o.startswith("resume=")), None)
    if resume:
        from src.utils.resume import compose_resumed

        result, _ = compose_resumed(resume, overrides, experiment)
        return result, print_config or bool(result.config.print_config)
    if experiment is None:
        names = "\n  ".join(list_experiments())
        raise ConfigError(f"missing experiment=<name>. Available experiments:\n  {names}")
    result = compose(experiment, overrides)
    return result, print_config or bool(result.config.print_config)


def main(task: str, argv: Sequence[str] | None = None) -> int:
    """Entry point: returns a process exit code; configuration errors print one clear message."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE.format(task=task) + "\nexperiments:\n  " + "\n  ".join(list_experiments()))
        return 0
    discover()  # recorded configs (resume) may name a module by the path it had before it moved
    try:
        result, print_config = compose_from_args(argv)
        secrets = RunSecrets.prepare(copy.deepcopy(result.config), result.overrides)  # hides them in messages
    except (ConfigError, FileNotFoundError, OmegaConfBaseException) as exc:
        print(f"error: {_without_secrets(str(exc), argv)}", file=sys.stderr)
        return 2
    if print_config:
        print(OmegaConf.to_yaml(secrets.config(result.config), resolve=True), end="")
        return 0
    from src.tasks import run
    from src.utils.checkpoint_files import CheckpointError
    from src.utils.signals import RunStopped

    try:
        outcome = run(result.config, result.overrides, task=task)
    except RunStopped as stop:
        print(f"stopped: {stop} (exit code {stop.exit_code})", file=sys.stderr)
        return stop.exit_code
    except (ConfigError, CheckpointError) as exc:
        print(f"error: {secrets.text(str(exc))}", file=sys.stderr)
        return 2
    except Exception:
        print(secrets.text(traceback.format_exc()), file=sys.stderr, end="")
        return 1
    if outcome.table is not None and not outcome.table.empty:
        print(f"\nResults ({result.experiment}, run {outcome.run_id}):\n")
        print(to_markdown(outcome.table))
    print(f"\nRun record: {_relative(outcome.run_dir)}")
    return 0


def _without_secrets(message: str, argv: Sequence[str]) -> str:
    """A composition error with the experiment's secrets hidden (the config marking them did not compose)."""
    experiment, overrides, _ = parse_args(argv)
    try:
        keys = secret_keys(compose(experiment, allow_missing=True).config) if experiment else []
    except (ConfigError, OmegaConfBaseException):
        keys = []
    values = [item.split("=", 1)[1] for item in overrides if "=" in item and override_key(item) in keys]
    values += [os.environ[env_name(key)] for key in keys if env_name(key) in os.environ]
    return redact_text(message, values, keys)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
