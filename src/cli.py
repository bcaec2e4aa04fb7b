"""Command-line front end shared by ``src.train`` and ``src.eval``: parse, compose, print or run."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.config.compose import ComposeResult, compose, list_experiments
from src.config.errors import ConfigError
from src.utils.run_record import read_json
from src.utils.tables import to_markdown

USAGE = """usage: python -m src.{task} experiment=<name> [key=value ...] [group=option ...] [--print-config]

  experiment=<name>   an experiment file below experiments/ (without .yaml)
  key=value           override a value (struct mode: misspelt keys fail); +key=value adds a new key
  group=option        pick a group file, e.g. trainer=ddp_cpu, logger=none
  resume=<run dir>    continue a run from its last.ckpt (same run dir, same W&B run)
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
    """Compose the config named on the command line; ``resume=`` alone reuses the run's own experiment."""
    experiment, overrides, print_config = parse_args(argv)
    resume = next((o.split("=", 1)[1] for o in overrides if o.startswith("resume=")), None)
    if experiment is None and resume:
        from src.utils.run_record import resolve_resume

        run_dir, _ = resolve_resume(resume)
        experiment = read_json(run_dir / "meta.json")["experiment"]
        saved = (
            (run_dir / "overrides.txt").read_text().split() if (run_dir / "overrides.txt").is_file() else []
        )
        new_keys = {o.split("=", 1)[0] for o in overrides}
        overrides = [o for o in saved if o.split("=", 1)[0] not in new_keys] + overrides
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
    try:
        result, print_config = compose_from_args(argv)
    except (ConfigError, FileNotFoundError, OmegaConfBaseException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if print_config:
        print(OmegaConf.to_yaml(result.config, resolve=True), end="")
        return 0
    from src.tasks import run

    outcome = run(result.config, result.overrides, task=task)
    if outcome.table is not None and not outcome.table.empty:
        print(f"\nResults ({result.experiment}, run {outcome.run_id}):\n")
        print(to_markdown(outcome.table))
    print(f"\nRun record: {_relative(outcome.run_dir)}")
    return 0


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
