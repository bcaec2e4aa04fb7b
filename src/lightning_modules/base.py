"""The base of every registered LightningModule: the hooks the run driver calls, with their defaults.

:mod:`src.tasks` runs any LightningModule; a project module derives from :class:`LabModule` and overrides
only the hooks that differ (instead of the driver probing for optional attributes).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import pytorch_lightning as pl


class LabModule(pl.LightningModule):
    """LightningModule with the run driver's hooks (``strict_loading`` is Lightning's own attribute)."""

    @property
    def requires_checkpoint(self) -> bool:
        """Whether ``src.eval`` needs ``ckpt_path`` (False for modules with nothing trained)."""
        return True

    def results_table(self, metrics: Mapping[str, float]) -> pd.DataFrame | None:
        """The run's result table from its logged metrics (None: one row of ``test/*`` metrics)."""
        return None
