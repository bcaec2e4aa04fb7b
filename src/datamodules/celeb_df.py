"""Celeb-DF v2 face frames, as written by ``python -m src.preprocess.videos celeb_df`` (``index.csv``).

The preprocessing CLI parses ``List_of_testing_videos.txt`` (its flag is **1 = real, 0 = fake**; inverted to
the project's 1 = fake) and puts those 518 videos in ``test``, everything else in ``train`` (Celeb-DF has no
official train/val list). ``root`` is ``OUT_DIR/celeb_df`` (or ``OUT_DIR``), from the config or
``PROFACE_CELEB_DF_ROOT``. Batches as :class:`src.datamodules.ffpp.FFPPFramesDataModule`; ``methods`` are
``real`` / ``synthesis``.
"""

from __future__ import annotations

from src.datamodules.ffpp import VideoFramesDataModule


class CelebDFFramesDataModule(VideoFramesDataModule):
    """Celeb-DF v2 frames with the official test list (label 1 = fake)."""

    dataset_name = "celeb_df"
    env_var = "PROFACE_CELEB_DF_ROOT"
