"""Checkpoint files: every unreadable or unfitting file gets one line naming it and what is wrong.

Checkpoints are written here with ``torch.save`` (a real Lightning fit would take seconds); a plain
``torch.load`` fails every error test below (raw ``KeyError``/``EOFError``/``RuntimeError`` without the path,
or silently returns something that is not a usable checkpoint).
"""

from __future__ import annotations

import functools
import importlib.metadata
import pickle
import random
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from src.utils.checkpoint_files import (
    CHECKPOINT_FORMAT,
    RECORD_KEY,
    CheckpointError,
    CheckpointNotFoundError,
    check_state_dict_fits,
    describe_checkpoint,
    open_checkpoint,
    read_checkpoint,
)
from src.utils.checkpoint_io import check_readable_hyperparameters

# Importing pytorch_lightning for its __version__ takes seconds; the package metadata is the same number.
LIGHTNING_VERSION = importlib.metadata.version("pytorch-lightning")
EXPERIMENT = "proface/demo_synthetic"
TARGET = "src.papers.proface.module.ProFaceModule"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _touch(path: str) -> None:
    """What the malicious payload would run on unpickling: create a marker file."""
    Path(path).touch()


class _Payload:
    """An object whose unpickling calls :func:`_touch` (stands in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return _touch, (str(self.marker),)


def _net(hidden: int = 8) -> nn.Module:
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))


def _state(net: nn.Module, prefix: str = "net.") -> dict[str, torch.Tensor]:
    return {prefix + key: value for key, value in net.state_dict().items()}


def _lightning_checkpoint(
    net: nn.Module | None = None, version: str = LIGHTNING_VERSION, record: dict | None = None
) -> dict:
    """What Lightning + RunRecordCallback write, in miniature."""
    default_record = {
        "config": {"model": {"_target_": TARGET}},
        "run_id": "20250101-000000-abcdef",
        "experiment": EXPERIMENT,
        "run_dir": "runs/proface/demo_synthetic/20250101-000000-abcdef",
    }
    return {
        "state_dict": _state(net or _net()),
        "pytorch-lightning_version": version,
        "epoch": 2,
        "global_step": 30,
        RECORD_KEY: default_record if record is None else record,
    }


def _save(tmp_path: Path, obj: object, name: str = "model.ckpt", **kwargs: object) -> Path:
    path = tmp_path / name
    torch.save(obj, path, **kwargs)
    return path


def _error(path: Path, *, mmap: bool = False, opener: Callable = read_checkpoint) -> str:
    """The message of the CheckpointError raised for ``path``: one line, naming the file."""
    with pytest.raises(CheckpointError) as caught:
        opener(path, mmap=mmap)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message and "\r" not in message
    return message


# ------------------------------------------------------------------------------------ readable files


def test_lightning_checkpoint_is_read_and_described(tmp_path: Path) -> None:
    path = _save(tmp_path, _lightning_checkpoint())
    for mmap in (False, True):
        checkpoint, info = open_checkpoint(path, mmap=mmap)
        assert set(checkpoint["state_dict"]) == set(_state(_net()))
    assert info.is_lightning and not info.is_state_dict
    assert (info.epoch, info.global_step, info.tensor_count) == (2, 30, 4)
    assert (info.experiment, info.model_target, info.format) == (EXPERIMENT, TARGET, CHECKPOINT_FORMAT)
    assert info.lightning_version == LIGHTNING_VERSION and info.has_record


def test_checkpoint_without_record_is_format_1(tmp_path: Path) -> None:
    checkpoint = _lightning_checkpoint()
    del checkpoint[RECORD_KEY]
    _, info = open_checkpoint(_save(tmp_path, checkpoint))
    assert (info.has_record, info.experiment, info.model_target, info.format) == (False, None, None, 1)


def _first_half_of_real(tmp_path: Path) -> bytes:
    raw = _save(tmp_path, _lightning_checkpoint(), "full.ckpt").read_bytes()
    return raw[: len(raw) // 2]


def _zip_without_torch(tmp_path: Path) -> bytes:
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("notes.txt", "hello")
    return (tmp_path / "other.zip").read_bytes()


def _zip_with_bad_pickle(tmp_path: Path) -> bytes:
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02garbage")
        archive.writestr("archive/version", "3\n")
    return (tmp_path / "bad.zip").read_bytes()


def _safetensors_header(_: Path) -> bytes:
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    return struct.pack("<Q", len(header)) + header + b"\x00" * 4


BAD_FILES: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "empty": (lambda _: b"", "is empty (0 bytes)"),
    "truncated": (_first_half_of_real, "is a truncated or corrupt zip archive"),
    "text": (lambda _: b"hello world\nnot a checkpoint\n", "not a PyTorch checkpoint: it is a text file"),
    "yaml": (
        lambda _: b"model:\n  _target_: x.Y\ntrainer:\n  max_epochs: 3\n",
        "text file (first line 'model:')",
    ),
    "random": (
        lambda _: random.Random(0).randbytes(4096),
        "not a PyTorch checkpoint: unrecognised binary data",
    ),
    "jpeg": (
        lambda _: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200),
        "not a PyTorch checkpoint: it is a JPEG",
    ),
    "plain_pickle": (lambda _: pickle.dumps({"a": 1}), "a plain Python pickle without PyTorch's header"),
    "other_zip": (_zip_without_torch, "is a zip archive but not a PyTorch checkpoint (no data.pkl"),
    "bad_pickle_in_zip": (_zip_with_bad_pickle, "has corrupt pickled data"),
    "safetensors": (_safetensors_header, "it is a safetensors file"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_unreadable_file_is_named_with_the_reason(tmp_path: Path, kind: str) -> None:
    make, expected = BAD_FILES[kind]
    path = tmp_path / f"{kind}.ckpt"
    path.write_bytes(make(tmp_path))
    assert expected in _error(path)
    assert expected in _error(path, mmap=True)


def test_missing_file_is_also_a_file_not_found_error(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "last.ckpt"
    with pytest.raises(CheckpointNotFoundError) as caught:
        read_checkpoint(path)
    assert isinstance(caught.value, FileNotFoundError)
    assert str(caught.value) == f"checkpoint {path} does not exist"


def test_directory_points_at_its_last_checkpoint(tmp_path: Path) -> None:
    assert _error(tmp_path).endswith("is a directory, not a checkpoint file")
    (tmp_path / "checkpoints").mkdir()
    last = _save(tmp_path / "checkpoints", _lightning_checkpoint(), "last.ckpt")
    assert f"(did you mean {last}?)" in _error(tmp_path)


def test_pickled_objects_are_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "payload_ran"
    checkpoint = {**_lightning_checkpoint(), "hyper_parameters": {"x": _Payload(marker)}}
    path = _save(tmp_path, checkpoint)
    message = _error(path)
    assert f"contains pickled Python objects such as {__name__}._touch" in message
    assert "could run code" in message
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the test's own file: proves the payload is live
    assert marker.exists()


def test_legacy_file_reads_but_cannot_be_memory_mapped(tmp_path: Path) -> None:
    path = _save(tmp_path, _lightning_checkpoint(), _use_new_zipfile_serialization=False)
    assert open_checkpoint(path)[1].is_lightning
    assert "is a legacy (non-zip, PyTorch < 1.6) file, which cannot be memory-mapped" in _error(
        path, mmap=True
    )


def test_top_level_list_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path, [torch.zeros(2)])
    assert "holds a list at the top level, not a checkpoint dict" in _error(path)


# ------------------------------------------------------------------------------------ not a Lightning file


def test_bare_state_dict_is_described_and_refused(tmp_path: Path) -> None:
    path = _save(tmp_path, _net().state_dict())
    info = describe_checkpoint(read_checkpoint(path))
    assert info.is_state_dict and not info.is_lightning and info.tensor_count == 4
    message = _error(path, opener=open_checkpoint)
    assert f"checkpoint {path} is a bare state dict of 4 tensors, not a Lightning checkpoint" in message
    assert "weights manifest" in message


def test_other_dict_is_not_a_lightning_checkpoint(tmp_path: Path) -> None:
    path = _save(tmp_path, {"model": _net().state_dict(), "epoch": 3})
    message = _error(path, opener=open_checkpoint)
    assert "is not a Lightning checkpoint (no 'state_dict' or 'pytorch-lightning_version'" in message
    assert "top-level keys: model, epoch" in message


def test_newer_format_is_refused(tmp_path: Path) -> None:
    record = {**_lightning_checkpoint()[RECORD_KEY], "format": CHECKPOINT_FORMAT + 1}
    path = _save(tmp_path, _lightning_checkpoint(record=record))
    assert _error(path, opener=open_checkpoint) == (
        f"checkpoint {path} was written by a newer ProFace Lab (checkpoint format {CHECKPOINT_FORMAT + 1}; "
        f"this version reads up to {CHECKPOINT_FORMAT})"
    )


def test_lightning_1x_checkpoint_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path, _lightning_checkpoint(version="1.9.5"))
    message = _error(path, opener=open_checkpoint)
    assert f"was written by PyTorch Lightning 1.9.5, but {LIGHTNING_VERSION} is installed" in message
    assert "cannot resume a 1.x checkpoint" in message


# ------------------------------------------------------------------------------------ fitting the model


def _fit_error(path: Path, model: nn.Module, *, strict: bool = True) -> str:
    checkpoint, info = open_checkpoint(path)
    with pytest.raises(CheckpointError) as caught:
        check_state_dict_fits(
            path,
            checkpoint["state_dict"],
            _state(model),
            strict=strict,
            this_experiment="demo/recognizer",
            this_target="src.papers.face_recognizer.module.FaceRecognizerModule",
            info=info,
        )
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_same_network_fits(tmp_path: Path) -> None:
    path = _save(tmp_path, _lightning_checkpoint())
    checkpoint, info = open_checkpoint(path)
    check_state_dict_fits(path, checkpoint["state_dict"], _state(_net()), info=info)


def test_other_network_size_is_a_shape_mismatch_even_when_not_strict(tmp_path: Path) -> None:
    path = _save(tmp_path, _lightning_checkpoint())
    for strict in (True, False):
        message = _fit_error(path, _net(hidden=16), strict=strict)
        assert message.startswith(
            f"checkpoint {path} (experiment {EXPERIMENT}, model {TARGET}) does not fit experiment "
            "demo/recognizer (model src.papers.face_recognizer.module.FaceRecognizerModule): "
            "3 shape mismatches (net.0.weight: checkpoint [8, 4] vs model [16, 4], net.0.bias: "
            "checkpoint [8] vs model [16], net.2.weight: checkpoint [2, 8] vs model [2, 16])"
        )
        assert "missing" not in message and "unexpected" not in message


def test_other_network_lists_missing_and_unexpected_keys(tmp_path: Path) -> None:
    path = _save(tmp_path, _lightning_checkpoint())
    other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    message = _fit_error(path, other)
    assert "does not fit experiment demo/recognizer" in message
    assert "5 missing keys (net.1.weight, net.1.bias, net.1.running_mean, ...)" in message
    assert "2 unexpected keys (net.2.weight, net.2.bias)" in message
    assert "2 shape mismatches (net.0.weight: checkpoint [8, 4] vs model [4, 3, 3, 3], net.0.bias" in message


def test_not_strict_ignores_missing_and_unexpected_keys(tmp_path: Path) -> None:
    path = _save(tmp_path, _lightning_checkpoint())
    checkpoint, info = open_checkpoint(path)
    model = {"head.weight": torch.zeros(3), **_state(_net())}
    del model["net.2.bias"]
    check_state_dict_fits(path, checkpoint["state_dict"], model, strict=False, info=info)
    with pytest.raises(
        CheckpointError, match=r"^checkpoint .* does not fit this model: 1 missing key \(head"
    ):
        check_state_dict_fits(path, checkpoint["state_dict"], model)


class _SavesItsOptimizer(pl.LightningModule):
    """A module that forgot to leave its optimizer factory out of ``save_hyperparameters``."""

    def __init__(self, optimizer: Callable[..., torch.optim.Optimizer], lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()


class _IgnoresItsOptimizer(_SavesItsOptimizer):
    def __init__(self, optimizer: Callable[..., torch.optim.Optimizer], lr: float = 0.1) -> None:
        pl.LightningModule.__init__(self)
        self.save_hyperparameters(ignore=["optimizer"])


def test_hyperparameters_a_checkpoint_could_not_load_back_are_refused_before_the_run() -> None:
    """A factory in the hyper-parameters would be written into every checkpoint and fail the weights_only
    read of the test after training; the run refuses it up front, naming the key."""
    factory = functools.partial(torch.optim.Adam, lr=1e-4)
    with pytest.raises(TypeError, match=r"_SavesItsOptimizer .*: optimizer \(partial\); .*ignore"):
        check_readable_hyperparameters(_SavesItsOptimizer(factory))
    check_readable_hyperparameters(_IgnoresItsOptimizer(factory))  # plain data only: accepted
