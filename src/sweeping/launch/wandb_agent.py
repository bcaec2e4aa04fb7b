"""The ``wandb-agent`` launcher: the sweep file created on a W&B server and run by ``wandb agent``.

W&B's own sweep controller then proposes the points (grid, random, bayes, hyperband) and the agent starts
``python -m src.train`` for each, filling ``${args_no_hyphens}`` with the point's ``key=value`` items. The
sweep's command is rewritten first so that its runs log online (``logger.wandb.mode=online``) and carry the
sweep's name and the command line's config overrides. A run started by the agent joins the agent's W&B run:
``wandb.init`` inside a sweep takes the run id, project and entity from the agent (``WANDB_SWEEP_ID`` /
``WANDB_RUN_ID``), whatever the run passes.

Before anything is created the launcher checks that the W&B server answers (a TCP connection within
``timeout_s``) and that an API key is set up (``WANDB_API_KEY`` or a ``.netrc`` entry for the server, as
``wandb login`` writes); either missing is an error saying what to do. The key is never read into a
record, a log line or the sweep configuration.
"""

from __future__ import annotations

import copy
import netrc
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from src.sweeping.launch.core import Echo, Job, LauncherConfigError, LaunchResult, config_value
from src.sweeping.spec import SweepSpec

__all__ = [
    "DEFAULT_BASE_URL",
    "AgentOutcome",
    "WandbAgentLauncher",
    "agent_command",
    "run_wandb_sweep",
    "wandb_sweep_config",
]

DEFAULT_BASE_URL = "https://api.wandb.ai"


@dataclass(frozen=True)
class AgentOutcome:
    """What a W&B sweep run by the agent left here: the command W&B runs, the sweep, the agent's exit code
    (None for a dry run)."""

    command: list[str]
    sweep_path: str = ""
    returncode: int | None = None


@dataclass
class WandbAgentLauncher:
    """Settings of the ``wandb-agent`` launcher (``wandb_agent.yaml``); it runs whole sweeps only."""

    config: dict[str, Any]
    log_dir: Path
    echo: Echo = print
    name: str = "wandb-agent"

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, log_dir: Path, echo: Echo = print
    ) -> WandbAgentLauncher:
        """Check the settings' types."""
        config = dict(config)
        for key in ("project", "entity", "base_url"):
            config_value(config, key, str, "wandb-agent launcher")
        count = config_value(config, "count", int, "wandb-agent launcher")
        if count is not None and count < 1:
            raise LauncherConfigError(
                f"wandb-agent launcher: launcher.count must be at least 1 (got {count})"
            )
        config_value(config, "timeout_s", (int, float), "wandb-agent launcher")
        return cls(config=config, log_dir=Path(log_dir), echo=echo)

    def run_all(
        self, jobs: Sequence[Job], on_done: Callable[[int, LaunchResult], None] | None = None
    ) -> list[LaunchResult]:
        """Not for jobs: W&B's controller chooses what runs."""
        raise LauncherConfigError(
            "the wandb-agent launcher runs whole sweeps (python -m src.sweep <file> --launcher wandb-agent); "
            "use local or slurm for a list of jobs"
        )


def base_url(config: Mapping[str, Any]) -> str:
    """The W&B server: ``launcher.base_url``, else ``WANDB_BASE_URL``, else W&B's public server."""
    return str(config.get("base_url") or os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def check_server(url: str, timeout_s: float) -> None:
    """Refuse (with what to do) when nothing answers at ``url`` within ``timeout_s`` seconds."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise LauncherConfigError(
            f"W&B server URL {url!r} is not an http(s) URL (launcher.base_url / WANDB_BASE_URL)"
        )
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            pass
    except OSError as err:
        raise LauncherConfigError(
            f"cannot reach the W&B server at {url} ({err}); the wandb-agent launcher needs a reachable "
            "server: set WANDB_BASE_URL or launcher.base_url to yours, or run the sweep locally (--launcher "
            "local) or on SLURM (--launcher slurm)"
        ) from None


def api_key_source(url: str) -> str | None:
    """Where an API key for ``url`` is set up (``WANDB_API_KEY`` or the ``.netrc`` file), None if nowhere.
    Only the presence is checked; the key itself is not kept."""
    if os.environ.get("WANDB_API_KEY"):
        return "WANDB_API_KEY"
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    host = urlparse(url).hostname or ""
    try:
        entry = netrc.netrc(str(path)).authenticators(host) if path.is_file() else None
    except (OSError, netrc.NetrcParseError):
        entry = None
    return str(path) if entry and entry[2] else None


def agent_command(
    spec: SweepSpec, experiment: str, fixed: Sequence[str], overrides: Sequence[str]
) -> list[str]:
    """The sweep's command as W&B runs it: the experiment, its fixed and the command line's overrides, online
    logging, the sweep's name, and the point's parameters last (``${args_no_hyphens}``)."""
    from src.sweeping.expand import format_override_value

    return [
        "${env}",
        "${interpreter}",
        "-m",
        "src.train",
        f"experiment={experiment}",
        *fixed,
        *overrides,
        "logger.wandb.mode=online",
        f"sweep.name={format_override_value(spec.name)}",
        "${args_no_hyphens}",
    ]


def wandb_sweep_config(spec: SweepSpec, command: list[str]) -> dict[str, Any]:
    """The sweep configuration sent to W&B: the file (with command-line changes) and the rewritten command."""
    config = copy.deepcopy(dict(spec.raw))
    config["name"] = spec.name
    config["command"] = command
    config.pop("program", None)  # the command says what runs
    return config


def run_wandb_sweep(
    spec: SweepSpec,
    config: Mapping[str, Any],
    *,
    experiment: str,
    fixed: Sequence[str],
    changes: Sequence[str],
    run_overrides: Sequence[str],
    count: int | None,
    dry_run: bool,
    python: str,
    echo: Echo,
) -> AgentOutcome:
    """Create the sweep on the W&B server and run ``wandb agent`` on it (``count`` points, else until
    the sweep is done)."""
    launcher = WandbAgentLauncher.from_config(config, log_dir=Path("."), echo=echo)
    command = agent_command(spec, experiment, fixed, run_overrides)
    sweep_config = wandb_sweep_config(spec, command)
    count = launcher.config.get("count") or count
    project = launcher.config.get("project") or spec.project
    entity = launcher.config.get("entity") or spec.entity
    echo(f"sweep {spec.name!r}: method={spec.method} on W&B, experiment={experiment}, launcher=wandb-agent")
    echo(f"    command: {' '.join(command)}")
    if dry_run:
        return AgentOutcome(command)
    url = base_url(launcher.config)
    check_server(url, float(launcher.config.get("timeout_s") or 5))
    source = api_key_source(url)
    if source is None:
        raise LauncherConfigError(
            f"no W&B API key for {url}: run `wandb login` (writes ~/.netrc) or set WANDB_API_KEY in the "
            "environment; the wandb-agent launcher never stores the key"
        )
    import wandb

    echo(f"W&B server {url} answers; API key from {source}")
    sweep_id = wandb.sweep(sweep_config, project=project, entity=entity)
    path = "/".join(p for p in (entity, project, sweep_id) if p)
    agent = [_wandb_executable(python), "agent", *(["--count", str(count)] if count else []), path]
    bin_dir = str(Path(python).parent)
    env = {**os.environ, "WANDB_MODE": "online", "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    if changes:
        echo(f"sweep changed on the command line: {', '.join(changes)}")
    echo(f"running: {' '.join(agent)}")
    returncode = subprocess.run(agent, env=env, check=False).returncode
    echo(f"wandb agent ended with exit code {returncode}; the points are in W&B sweep {path}")
    return AgentOutcome(command, path, returncode)


def _wandb_executable(python: str) -> str:
    """``wandb`` on PATH, else next to the interpreter (the virtual environment's)."""
    found = shutil.which("wandb")
    if found:
        return found
    beside = Path(python).parent / "wandb"
    if beside.is_file():
        return str(beside)
    raise LauncherConfigError(
        f"the wandb command is not installed (not on PATH, not in {Path(python).parent})"
    )
