"""What the launchers of :mod:`src.sweeping.launchers` are made of: the shared job/result types (``core``)
and the launchers that need a scheduler or a server, ``slurm`` (submitit) and ``wandb-agent`` (W&B).

The latter two are imported by :func:`src.sweeping.launchers.make_launcher` only when chosen, so the local
path needs neither submitit nor wandb.
"""
