"""Command-line front end shared by ``src.train`` and ``src.eval``: parse, compose, print or run.

Expected failures (a configuration, dataset layout, weights or checkpoint problem, see
:func:`expected_errors`) print one ``error: ...`` line and exit 2; ``--debug`` adds the traceback. Any other
exception prints its traceback and exits 1. Secrets are hidden (``***``) in both.
"""

from __future__ import annotations

import copy
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.config.compose import ComposeResult, compose, experiment_overview, list_experiments
from src.config.errors import ConfigError
from src.config.secrets import RunSecrets, env_name, override_key, redact_text, secret_keys
from src.papers.registry import PaperInfo, discover
from src.utils.tables import to_console

USAGE = """usage: python -m src.{task} experiment=<name> [key=value ...] [group=option ...]
       [--print-config] [--debug]

  experiment=<name>   an experiment file below experiments/ (without .yaml)
  key=value           override a value (struct mode: misspelt keys fail); +key=value adds a new key
  group=option        pick a group file, e.g. trainer=ddp_cpu, logger=none, datamodule=identity_folders
  resume=<run dir>    continue a run from its last.ckpt (same run dir, same W&B run, exactly)
  --print-config      print the resolved config and exit (same as print_config=true)
  --debug             show the full traceback of an expected error (bad path, missing weights, ...)

  python -m src.check experiment=<name> [key=value ...] checks the config, data and weights without a run.
"""
OTHER = "other"  # experiments whose model is no registered paper's


@dataclass
class Args:
    """The command line, split: experiment name, overrides and flags."""

    experiment: str | None = None
    overrides: list[str] = field(default_factory=list)
    print_config: bool = False
    debug: bool = False


def parse_args(argv: Sequence[str], usage: str = USAGE) -> Args:
    """Split argv into the experiment name, the remaining overrides and the flags."""
    args = Args()
    for arg in argv:
        if arg in ("--print-config", "--cfg", "-c"):
            args.print_config = True
        elif arg == "--debug":
            args.debug = True
        elif arg.startswith("experiment="):
            args.experiment = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            raise ConfigError(f"unknown option '{arg}'\n{usage}")
        else:
            args.overrides.append(arg)
    return args


def compose_from_args(argv: Sequence[str]) -> tuple[ComposeResult, bool]:
    """Compose the config named on the command line; ``resume=`` reuses the run's experiment and overrides."""
    args = parse_args(argv)
    resume = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("resume=")), None)
    if resume:
        from src.utils.resume import compose_resumed

        result, _ = compose_resumed(resume, args.overrides, args.experiment)
        return result, args.print_config or bool(result.config.print_config)
    if args.experiment is None:
        experiments = list_experiments()
        raise ConfigError(
            f"missing experiment=<name>, e.g. experiment=demo/recognizer. Experiments: "
            f"{experiment_overview(experiments)} (--help lists all {len(experiments)})"
        )
    result = compose(args.experiment, args.overrides)
    return result, args.print_config or bool(result.config.print_config)


def expected_errors() -> tuple[type[BaseException], ...]:
    """Failures with a message that says what to fix: shown as one line (exit 2), not as a traceback."""
    from src.datamodules.components.image_io import CorruptImageError
    from src.datamodules.components.layout import DatasetLayoutError
    from src.datamodules.components.metadata import MetadataFormatError
    from src.datamodules.components.video_index import MetadataFileError
    from src.networks.recognizers.checkpoints import ChecksumMismatchError
    from src.utils.checkpoint_files import CheckpointError
    from src.weights.core import WeightsError

    return (
        ConfigError,
        CheckpointError,
        DatasetLayoutError,
        MetadataFormatError,
        MetadataFileError,
        CorruptImageError,
        WeightsError,
        ChecksumMismatchError,
    )


def report_error(exc: BaseException, redact: Callable[[str], str], debug: bool, code: int = 2) -> int:
    """Print ``error: <message>`` (after the traceback with ``--debug``), secrets hidden; return ``code``."""
    if debug:
        print(redact("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
    print(f"error: {redact(str(exc))}", file=sys.stderr)
    return code


def main(task: str, argv: Sequence[str] | None = None) -> int:
    """Entry point: returns a process exit code; expected errors print one clear message."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(help_text(task))
        return 0
    debug = "--debug" in argv
    discover()  # recorded configs (resume) may name a module by the path it had before it moved
    try:
        result, print_config = compose_from_args(argv)
        secrets = RunSecrets.prepare(copy.deepcopy(result.config), result.overrides)  # hides them in messages
    except (ConfigError, FileNotFoundError, OmegaConfBaseException) as exc:
        return report_error(exc, lambda text: _without_secrets(text, argv), debug)
    if print_config:
        print(OmegaConf.to_yaml(secrets.config(result.config), resolve=True), end="")
        return 0
    from src.tasks import run
    from src.utils.signals import RunStopped

    try:
        outcome = run(result.config, result.overrides, task=task)
    except RunStopped as stop:
        print(f"stopped: {stop} (exit code {stop.exit_code})", file=sys.stderr)
        return stop.exit_code
    except expected_errors() as exc:
        return report_error(exc, secrets.text, debug)
    except Exception:
        print(secrets.text(traceback.format_exc()), file=sys.stderr, end="")
        return 1
    if outcome.table is not None and not outcome.table.empty:
        print(f"\nResults ({result.experiment}, run {outcome.run_id}):\n")
        print(to_console(outcome.table))
    print(f"\nRun record: {_relative(outcome.run_dir)}")
    return 0


def help_text(task: str) -> str:
    """Usage, the registered papers, then the experiments grouped by paper."""
    papers = discover()
    lines = [USAGE.format(task=task)]
    lines.append("papers (python -m src.report <paper> builds its table; python -m src.papers says more):")
    width = max((len(name) for name in papers), default=0) + 2
    lines += [f"  {name:<{width}}{info.kind:<10}{info.short_title}" for name, info in papers.items()]
    lines.append("\nexperiments by paper (experiment=<name>; a/{b,c} stands for a/b and a/c):")
    for paper, names in experiments_by_paper(papers, list_experiments()).items():
        lines.append(f"  {paper} ({len(names)})")
        lines += [f"    {line}" for line in folded(names)]
    return "\n".join(lines)


def experiments_by_paper(papers: Mapping[str, PaperInfo], experiments: Sequence[str]) -> dict[str, list[str]]:
    """Experiments per paper: those in ``experiments/<paper>/`` by their folder (no composing: cheap), the
    others (``demo/...``) by their model's ``_target_``; ``other`` when it is no paper's module."""
    owner = {target: name for name, info in papers.items() for target in info.targets}
    groups: dict[str, list[str]] = {name: [] for name in papers}
    for experiment in experiments:
        paper = experiment.split("/", 1)[0]
        if paper not in papers:
            paper = owner.get(_model_target(experiment) or "", OTHER)
        groups.setdefault(paper, []).append(experiment)
    return {paper: names for paper, names in groups.items() if names}


def _model_target(experiment: str) -> str | None:
    """The ``_target_`` of an experiment's model (composed with ``???`` values left open), None if unknown."""
    try:
        return str(compose(experiment, allow_missing=True).config.model.get("_target_"))
    except (ConfigError, OmegaConfBaseException):
        return None


def folded(names: Sequence[str], least: int = 5) -> list[str]:
    """Sorted names, with ``least`` or more names of one folder folded to ``folder/{a,b,c}``."""
    folders: dict[str, list[str]] = {}
    for name in sorted(names):
        folder, _, leaf = name.rpartition("/")
        folders.setdefault(folder, []).append(leaf)
    lines = []
    for folder, leaves in folders.items():
        prefix = f"{folder}/" if folder else ""
        if len(leaves) >= least:
            lines.append(f"{prefix}{{{','.join(leaves)}}}")
        else:
            lines += [f"{prefix}{leaf}" for leaf in leaves]
    return lines


def _without_secrets(message: str, argv: Sequence[str]) -> str:
    """A composition error with the experiment's secrets hidden (the config marking them did not compose)."""
    args = parse_args([a for a in argv if not a.startswith("-")])
    try:
        keys = secret_keys(compose(args.experiment, allow_missing=True).config) if args.experiment else []
    except (ConfigError, OmegaConfBaseException):
        keys = []
    values = [item.split("=", 1)[1] for item in args.overrides if "=" in item and override_key(item) in keys]
    values += [os.environ[env_name(key)] for key in keys if env_name(key) in os.environ]
    return redact_text(message, values, keys)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


SERVING_ACTIONS = ("protect", "recover", "detect", "methods")
ENTRY_USAGE = """usage: python -m src.cli {train,eval} experiment=<name> [key=value ...]
       python -m src.cli {protect,recover} IN [IN ...] OUT --method NAME [--ckpt FILE] [--faces detect|whole]
       python -m src.cli detect IN [IN ...] OUT --method NAME --ckpt FILE
       python -m src.cli methods
(python -m src.cli <action> --help says more; docs/serving.md)"""


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``python -m src.cli <action> ...``: train/eval a config, or protect/recover/detect files."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("train", "eval"):
        return main(argv[0], argv[1:])
    if not argv or argv[0] not in SERVING_ACTIONS:
        print(ENTRY_USAGE, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    from src.serving.cli import PASSWORD_ENV
    from src.serving.cli import main as serving_main

    env_var = argv[argv.index("--password-env") + 1] if "--password-env" in argv[:-1] else PASSWORD_ENV
    hidden = [value for value in (os.environ.get(env_var),) if value]
    try:
        return serving_main(argv)
    except expected_errors() as exc:  # e.g. missing weights for a method's networks, a bad checkpoint
        return report_error(exc, lambda text: redact_text(text, hidden, []), "--debug" in argv)


if __name__ == "__main__":
    sys.exit(cli_main())
