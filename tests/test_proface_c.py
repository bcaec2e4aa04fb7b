"""PRO-Face C (docs/papers/proface_c.md): client network, injection into the frozen server, the patch-grid
hybrid obfuscation, the authors' weight layout, the transmission extension, a tiny run and its table."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
import torch

from src.datamodules.verification_bins import VerificationBinsDataModule
from src.metrics.verification import verification_accuracy
from src.networks.recognizers import pretrained_recognizer
from src.papers.proface_c.networks import (
    BlockChannelShuffle,
    ClientNetwork,
    authors_client_to_ours,
    compensated,
    convert_authors_client,
    inject_stage,
    server_stage_shapes,
)
from src.papers.proface_c.obfuscation import GAUSSIAN, MEDIAN, PIXELATE, PatchHybridBlur, cell_codes
from src.papers.proface_c.report import table_from_metrics
from src.papers.proface_c.settings import TINY_SHAPES, TINY_WIDTHS, tiny_module
from src.papers.proface_c.transmission import Transmission
from src.papers.proface_c.weights import authors_state_dict, load_authors_client
from src.preprocess.verification_bins import synthetic_verification_sets
from tests.helpers import run_experiment, tiny_overrides


def tiny_server() -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pretrained_recognizer("adaface_ir18", None, input_size=32, widths=TINY_WIDTHS)


# --- client ---------------------------------------------------------------------------------------


def test_block_shuffle_is_a_fixed_bijection_per_block() -> None:
    shuffle = BlockChannelShuffle(channels=6, grid=2, seed=3)
    assert shuffle.permutations.shape == (4, 6)
    assert all(sorted(row.tolist()) == list(range(6)) for row in shuffle.permutations)
    assert len({tuple(row.tolist()) for row in shuffle.permutations}) > 1  # blocks differ
    x = torch.randn(2, 6, 8, 8)
    out = shuffle(x)
    for block, (r, c) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
        perm = shuffle.permutations[block]
        assert torch.equal(out[:, :, r : r + 4, c : c + 4], x[:, perm, r : r + 4, c : c + 4])
    assert torch.equal(BlockChannelShuffle(6, 2, 3).permutations, shuffle.permutations)  # seeded
    with pytest.raises(ValueError, match="does not fit"):
        shuffle(torch.randn(1, 6, 7, 8))


def test_client_shapes_keys_and_the_authors_parameter_count() -> None:
    with torch.device("meta"):
        full = ClientNetwork()
    # the authors' 1,893,696 trainable parameters minus their unused output head (289,792)
    assert sum(p.numel() for p in full.parameters()) == 1_893_696 - 289_792
    client = ClientNetwork(TINY_SHAPES)
    assert all(torch.equal(k, torch.ones_like(k)) for k in client.keys)
    maps, keys = client(torch.randn(2, 3, 32, 32))
    assert [tuple(m.shape[1:]) for m in maps] == list(TINY_SHAPES)
    assert [tuple(k.shape) for k in keys] == list(TINY_SHAPES)


# --- injection ------------------------------------------------------------------------------------


def test_injection_changes_the_output_only_with_nonzero_maps_and_never_the_server() -> None:
    torch.manual_seed(0)
    server = tiny_server()
    assert server_stage_shapes(server) == list(TINY_SHAPES)
    before = {k: v.clone() for k, v in server.state_dict().items()}
    client = ClientNetwork(TINY_SHAPES)
    images = torch.rand(3, 3, 32, 32)
    plain = server.embed(images)
    zeros = [torch.zeros(3, *s) for s in TINY_SHAPES]
    with compensated(server, zeros, list(client.keys)):
        assert torch.allclose(server.embed(images), plain, atol=1e-6)
    maps, keys = client(torch.randn(3, 3, 32, 32))
    with compensated(server, maps, keys):
        injected = server.embed(images)
    assert (injected - plain).abs().max() > 1e-3
    assert torch.allclose(server.embed(images), plain, atol=1e-6)  # the hooks are gone after the block
    injected.sum().backward()
    assert all(p.grad is None for p in server.parameters())  # frozen: no parameter gradients
    assert client.interfaces[0][1].weight.grad is not None and client.keys[3].grad is not None
    assert all(torch.equal(v, before[k]) for k, v in server.state_dict().items())
    h, a, k = torch.randn(2, 4), torch.randn(2, 4), torch.randn(4)
    assert torch.allclose(inject_stage(h, a, k), h + torch.sigmoid(h) * a * k)


def test_stage_shapes_are_checked_against_the_server() -> None:
    module = tiny_module()
    with pytest.raises(Exception, match="stage_shapes"):
        type(module)(
            server=tiny_server(),
            client=ClientNetwork(),
            head=module.head,
            obfuscator=module.obfuscator,
            eval_obfuscators=dict(module.eval_obfuscators),
        )


# --- obfuscation ----------------------------------------------------------------------------------


def test_cell_codes_follow_the_authors_thirds() -> None:
    for cells in (4, 9, 16, 25):
        codes = cell_codes(cells, torch.Generator().manual_seed(cells))
        third = cells // 3
        assert (codes == MEDIAN).sum() == third and (codes == GAUSSIAN).sum() == third
        assert (codes == PIXELATE).sum() == cells - 2 * third


@pytest.mark.parametrize("cells", [4, 9, 16, 25])
def test_hybrid_keeps_the_size_for_every_grid_and_uses_all_three(cells: int) -> None:
    hybrid = PatchHybridBlur(cells=[cells], eval_cells=cells)
    images = torch.rand(2, 3, 112, 112)
    out = hybrid(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == images.dtype and 0 <= out.min() <= out.max() <= 1
    if 112 % math.isqrt(cells) == 0:  # no resizing: each cell is exactly one of the three obfuscations
        g = math.isqrt(cells)
        side = 112 // g
        params = hybrid.indexed_params([5])
        hybrid.eval()
        one = hybrid.obfuscate_indexed(images[:1], torch.tensor([5]))
        codes = params[0, 4 : 4 + cells].long().tolist()
        whole = {
            MEDIAN: hybrid.median.apply(images[:1], torch.tensor([hybrid.median.eval_kernel])),
            GAUSSIAN: hybrid.gaussian.apply(images[:1], torch.tensor([hybrid.gaussian.eval_sigma])),
            PIXELATE: hybrid.pixelate.apply(images[:1], torch.tensor([hybrid.pixelate.eval_block])),
        }
        for cell, code in enumerate(codes):
            r, c = divmod(cell, g)
            window = (..., slice(r * side, (r + 1) * side), slice(c * side, (c + 1) * side))
            assert torch.allclose(one[window], whole[code][window].clamp(0, 1))


def test_hybrid_evaluation_is_deterministic_per_image_index() -> None:
    hybrid = PatchHybridBlur().eval()
    images = torch.rand(6, 3, 112, 112)
    indices = torch.tensor([40, 41, 42, 43, 44, 45])
    full = hybrid.obfuscate_indexed(images, indices)
    # other batching, other order: the same image index gives the same output
    part = hybrid.obfuscate_indexed(images[[4, 1]], indices[[4, 1]])
    assert torch.equal(part, full[[4, 1]])
    assert not torch.equal(hybrid.indexed_params([40]), hybrid.indexed_params([41]))
    other_seed = PatchHybridBlur(eval_seed=9).indexed_params([40])
    assert not torch.equal(other_seed, hybrid.indexed_params([40]))
    training = PatchHybridBlur().train()
    params = training.draw_params(64, torch.Generator().manual_seed(0))
    assert set(params[:, 0].long().tolist()) == {2, 3, 4, 5}  # p in {4, 9, 16, 25}
    assert set(params[:, 1].long().tolist()) <= {7, 9, 11, 13, 15, 17, 19}


# --- the authors' weights -------------------------------------------------------------------------


def test_authors_key_layout_maps_onto_ours() -> None:
    """Literal key names of the authors' ClientBackbone (PPFR_model.py over torchkit's MobileFaceNet)."""
    expected = {
        "weight1": "keys.0",
        "weight4": "keys.3",
        "interface_1.1.weight": "interfaces.0.1.weight",
        "interface_3.1.bias": "interfaces.2.1.bias",
        "channel_permutations": "shuffle.permutations",
        "client_backbone.input_layer.conv.weight": "body.0.conv.conv.weight",
        "client_backbone.input_layer.prelu.weight": "body.0.conv.prelu.weight",
        "client_backbone.body_0.bn.running_var": "body.0.dw.bn.running_var",
        "client_backbone.body_1.conv_dw.conv.weight": "body.1.down.depthwise.conv.weight",
        "client_backbone.body_2.model.3.project.bn.bias": "body.1.blocks.3.project.bn.bias",
        "client_backbone.body_4.model.5.conv.prelu.weight": "body.2.blocks.5.expand.prelu.weight",
        "client_backbone.body_5.project.conv.weight": "body.3.down.project.conv.weight",
        "client_backbone.body_6.model.1.conv_dw.bn.weight": "body.3.blocks.1.depthwise.bn.weight",
        "client_backbone.body_7.conv.weight": "body.3.expand.conv.weight",
        "client_backbone.output_layer.3.weight": None,
    }
    assert {key: authors_client_to_ours(key) for key in expected} == expected
    client = ClientNetwork(TINY_SHAPES)
    state = authors_state_dict(client)
    assert set(state) - {k for k in state if k.startswith("client_backbone.output_layer.")} >= set(
        expected
    ) - {"client_backbone.output_layer.3.weight"}
    assert state["channel_permutations"].shape == (784, TINY_SHAPES[0][0])


def test_a_backbone_pth_in_the_authors_layout_loads(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = ClientNetwork(TINY_SHAPES)
    torch.save({f"module.{k}": v for k, v in authors_state_dict(source).items()}, tmp_path / "Backbone.pth")
    target = ClientNetwork(TINY_SHAPES, shuffle_seed=99)
    load_authors_client(target, str(tmp_path / "Backbone.pth"))
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    broken = authors_state_dict(source)
    del broken["interface_2.1.bias"]
    broken["client_backbone.body_9.conv.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"1 missing: interfaces\.1\.1\.bias.*1 unexpected"):
        convert_authors_client(target, broken)
    with pytest.raises(ValueError, match="shape mismatches"):
        convert_authors_client(ClientNetwork(), authors_state_dict(source))


# --- transmission extension -----------------------------------------------------------------------


def test_transmission_quantises_per_map_and_prunes_globally() -> None:
    maps = [torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4) * 10]
    sent = Transmission(bits=8).transmit(maps)
    for m, s in zip(maps, sent, strict=True):
        span = (m.amax(dim=(1, 2, 3)) - m.amin(dim=(1, 2, 3))).max()
        assert (m - s).abs().max() <= span / 255 / 2 + 1e-5  # half a quantisation step
        assert len(torch.unique(s[0])) <= 256
    coarse = Transmission(bits=2).transmit(maps)
    assert all(len(torch.unique(c[0])) <= 4 for c in coarse)
    client = ClientNetwork(TINY_SHAPES)
    transmission = Transmission(bits=4, prune_amount=0.5)
    transmission.prune(client)
    convs = torch.cat([m.weight.flatten() for m in client.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs((convs == 0).float().mean().item() - 0.5) < 0.01
    cost = transmission.describe_cost(client, TINY_SHAPES)
    elements = sum(c * h * w for c, h, w in TINY_SHAPES)
    assert cost["bytes_per_image"] == elements / 2 + 4 * 8 and cost["float32_bytes_per_image"] == elements * 4
    assert cost["client_nonzero_params"] < cost["client_params"]
    with pytest.raises(Exception, match="bits"):
        Transmission(bits=0)


# --- a tiny run -----------------------------------------------------------------------------------


def test_tiny_run_scores_every_pair_and_the_table_reads_back(runs_dir: Path, tmp_path: Path) -> None:
    """Fit and test the tiny configuration; recompute one logged accuracy from scratch with the bins."""
    experiment = "proface_c/celeba_ir101"
    overrides = tiny_overrides(experiment, runs_dir, extra=["trainer.max_epochs=1"])
    result = run_experiment(experiment, overrides)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    table = table_from_metrics(summary)
    assert list(table.columns) == ["method", "obfuscation", "lfw", "cfp_fp", "mean"]
    assert table[["method", "obfuscation"]].values.tolist()[:3] == [
        ["clear", "none"],
        ["obfuscated", "gaussian"],
        ["obfuscated", "hybrid"],
    ]
    assert len(table) == 9 and table[["lfw", "cfp_fp"]].map(lambda v: 0.0 <= v <= 1.0).all().all()
    assert summary["test/clear/mean"] == pytest.approx(
        (summary["test/clear/lfw"] + summary["test/clear/cfp_fp"]) / 2
    )
    # the clear row from scratch: the (random, seeded) server's cosine on the same bins
    data = json.loads((result.run_dir / "data.json").read_text())
    root = Path(data["verification"]["root"])
    module = tiny_module()
    checkpoint = torch.load(
        next((result.run_dir / "checkpoints").glob("*.ckpt")), map_location="cpu", weights_only=True
    )
    module.load_state_dict(checkpoint["state_dict"])
    bins = VerificationBinsDataModule(str(root), sets=["lfw"], image_size=32, batch_size=64)
    bins.setup()
    batch = next(iter(bins.test_dataloader()))
    with torch.no_grad():
        a = module.server.embed(batch["image_a"])
        b = module.server.embed(batch["image_b"])
    expected = verification_accuracy((a * b).sum(1).double(), batch["is_same"], 10, batch["fold"])["mean"]
    assert summary["test/clear/lfw"] == pytest.approx(expected)


def test_synthetic_bins_are_read_by_the_real_reader(tmp_path: Path) -> None:
    paths = synthetic_verification_sets(
        tmp_path, ["lfw"], identities_per_set=20, pairs_per_fold=1, image_size=32
    )
    assert [p.name for p in paths] == ["lfw.bin"]
    bins = VerificationBinsDataModule(str(tmp_path), sets=["lfw"], image_size=32)
    bins.setup()
    chosen = bins.set_pairs("lfw")
    assert (
        len(chosen) == 20
        and chosen.is_same.sum() == 10
        and sorted(set(chosen.fold.tolist())) == list(range(10))
    )
