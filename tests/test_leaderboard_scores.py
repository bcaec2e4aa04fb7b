"""The leaderboard panel's metric functions against independent references: numpy PSNR, pytorch-msssim SSIM,
a brute-force rank-1 loop, a numpy k-fold TAR / accuracy, and the protection protocol's own numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytorch_msssim
import torch

from src.evaluation.identity_protocol import evaluate_identity
from src.evaluation.protection_protocol import ProtectionEmbeddings, evaluate_protection
from src.face.detection import FaceDetection
from src.leaderboarding import scores
from src.leaderboarding.scores import (
    dp_epsilons,
    face_scores,
    flag_rate,
    identity_scores,
    pair_identity_scores,
    rank1_against_originals,
    recovery_scores,
    tar_key,
    utility_scores,
)
from src.metrics.privacy.audit import certify_angular_exponential
from src.metrics.privacy.dp_pix import certify_dp_pix
from src.metrics.privacy.record import RngInfo
from src.metrics.privacy.spherical_pld import certify_purkayastha
from src.weights import WeightsError, resolve


def _images(n: int = 4, size: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    original = torch.rand(n, 3, size, size, generator=g)
    noise = 0.05 * torch.arange(1, n + 1).view(n, 1, 1, 1) * torch.randn(n, 3, size, size, generator=g)
    return original, (original + noise).clamp(0, 1)


def _numpy_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    x, y = a.double().numpy(), b.double().numpy()
    mse = ((x - y) ** 2).reshape(len(x), -1).mean(axis=1)
    return float(np.mean(np.minimum(10 * np.log10(1.0 / mse), 100.0)))


def _msssim_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(pytorch_msssim.ssim(a.double(), b.double(), data_range=1.0, size_average=False).mean())


# ----------------------------------------------------------------------------------------------- utility


def test_utility_scores_match_pytorch_msssim_and_numpy_psnr() -> None:
    original, protected = _images()
    out = utility_scores(original, protected, lpips_net=None)
    assert set(out) == {"SSIM", "PSNR", "LPIPS"}
    assert out["SSIM"] == pytest.approx(_msssim_ssim(protected, original), abs=1e-6)
    assert out["PSNR"] == pytest.approx(_numpy_psnr(protected, original), abs=1e-4)
    assert math.isnan(out["LPIPS"])  # left out on purpose
    same = utility_scores(original, original.clone(), lpips_net=None)
    assert same["PSNR"] == 100.0 and same["SSIM"] == pytest.approx(1.0, abs=1e-6)  # capped, not inf


def test_utility_lpips_is_the_mean_over_chunks_with_the_project_net(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, str]] = []

    def fake_lpips(preds: torch.Tensor, target: torch.Tensor, net: str = "?") -> torch.Tensor:
        calls.append((preds.shape[0], net))
        return (preds - target).abs().flatten(1).mean(dim=1)

    monkeypatch.setattr(scores, "lpips", fake_lpips)
    monkeypatch.setattr(scores, "LPIPS_CHUNK", 3)
    original, protected = _images(n=5)
    out = utility_scores(original, protected)
    expected = float(np.abs(protected.double().numpy() - original.double().numpy()).reshape(5, -1).mean())
    assert out["LPIPS"] == pytest.approx(expected, rel=1e-6)
    assert calls == [(3, "alex"), (2, "alex")]  # the project's evaluation default, in chunks
    utility_scores(original, protected, lpips_net="vgg")
    assert calls[-1][1] == "vgg"


def test_utility_lpips_real_weights_or_a_clear_missing_weights_error() -> None:
    original, protected = _images(n=2, size=32)
    try:
        resolve("lpips-alex-backbone")
    except WeightsError:
        with pytest.raises(WeightsError, match="alexnet"):
            utility_scores(original, protected)
        return
    from src.metrics.perceptual import LPIPS

    metric = LPIPS(net="alex")
    metric.update(protected, original)
    assert utility_scores(original, protected)["LPIPS"] == pytest.approx(float(metric.compute()), rel=1e-5)


def test_utility_and_recovery_reject_bad_images() -> None:
    original, protected = _images()
    with pytest.raises(ValueError, match="utility_scores: `protected` has shape"):
        utility_scores(original, protected[:2], lpips_net=None)
    with pytest.raises(ValueError, match=r"`protected` must lie in \[0, 1\]"):
        utility_scores(original, protected * 255, lpips_net=None)
    with pytest.raises(ValueError, match=r"`original` must be a non-empty \[N, 3, S, S\]"):
        utility_scores(original[:, :1], protected[:, :1], lpips_net=None)
    with pytest.raises(ValueError, match="lpips_net must be one of"):
        utility_scores(original, protected, lpips_net="resnet")
    with pytest.raises(ValueError, match="recovery_scores: `recovered_wrong` contains NaN"):
        recovery_scores(original, protected, torch.full_like(original, math.nan))


def test_recovery_scores_match_references() -> None:
    original, right = _images(seed=1)
    wrong = torch.rand(original.shape, generator=torch.Generator().manual_seed(2))
    out = recovery_scores(original, right, wrong)
    assert out["recovery PSNR (right key)"] == pytest.approx(_numpy_psnr(right, original), abs=1e-4)
    assert out["recovery PSNR (wrong key)"] == pytest.approx(_numpy_psnr(wrong, original), abs=1e-4)
    assert out["recovery SSIM (right key)"] == pytest.approx(_msssim_ssim(right, original), abs=1e-6)
    assert out["recovery SSIM (wrong key)"] == pytest.approx(_msssim_ssim(wrong, original), abs=1e-6)
    assert out["recovery PSNR (right key)"] > out["recovery PSNR (wrong key)"]


# ---------------------------------------------------------------------------------------- face scores

EYES = np.array([[30.0, 40.0], [70.0, 40.0], [50.0, 60.0], [35.0, 80.0], [65.0, 80.0]])


def _face(shift: float = 0.0, size: float = 100.0) -> FaceDetection:
    return FaceDetection(
        box=np.array([0.0, 0.0, size, size]), score=0.99, landmarks=EYES + np.array([shift, 0.0])
    )


class FixedDetector:
    """Returns fixed detections and records what it was given."""

    def __init__(self, detections: list[list[FaceDetection]]) -> None:
        self.detections = detections
        self.seen: list[np.ndarray] = []

    def detect_batch(self, images: list[np.ndarray]) -> list[list[FaceDetection]]:
        self.seen = images
        return self.detections


def test_face_scores_rate_over_original_faces_and_nme_by_hand() -> None:
    original, protected = _images(n=4)
    originals = [[_face()], [_face()], [_face(), _face(size=10.0)], []]
    protecteds = [[_face(shift=4.0)], [], [_face(shift=10.0)], [_face()]]
    detector = FixedDetector(originals + protecteds)
    out = face_scores(original, protected, detector)
    # image 3: no original face, so its protected face does not count; image 1: the face is lost
    assert out["face detection rate"] == pytest.approx(2 / 3)
    assert out["landmark NME"] == pytest.approx((4 / 40 + 10 / 40) / 2)  # eyes 40 px apart
    assert out["original faces found"] == 3.0
    assert len(detector.seen) == 8
    first = detector.seen[0]
    assert first.dtype == np.uint8 and first.shape == (24, 24, 3)
    expected = np.round(original[0].permute(1, 2, 0).double().numpy() * 255).astype(np.uint8)
    assert np.array_equal(first, expected)
    assert np.array_equal(detector.seen[4][..., 1], np.round(protected[0, 1].double().numpy() * 255))


def test_face_scores_without_original_faces_is_nan_and_bad_detectors_fail() -> None:
    original, protected = _images(n=2)
    out = face_scores(original, protected, FixedDetector([[], [], [_face()], [_face()]]))
    assert math.isnan(out["face detection rate"]) and math.isnan(out["landmark NME"])
    assert out["original faces found"] == 0.0
    with pytest.raises(ValueError, match="detect_batch method"):
        face_scores(original, protected, object())
    with pytest.raises(ValueError, match="one detection list per image"):
        face_scores(original, protected, FixedDetector([[]]))


# ------------------------------------------------------------------------------------------- identity


def _embeddings(seed: int = 0, n_id: int = 12, per_id: int = 6, spread: float = 0.9):
    """Clustered original embeddings, protected ones moved by noise, plus a singleton identity at the end."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_id + 1, 16, generator=g)
    identity = torch.cat([torch.arange(n_id).repeat_interleave(per_id), torch.tensor([n_id])])
    original = centres[identity] + 0.5 * torch.randn(identity.numel(), 16, generator=g)
    protected = original + spread * torch.randn(original.shape, generator=g)
    return original, protected, identity


def _brute_force_rank1(probes: torch.Tensor, gallery: torch.Tensor, identity: torch.Tensor) -> float:
    """The first image of each identity (gallery version) is the gallery; every other image a probe."""
    p, g, y = probes.double().numpy(), gallery.double().numpy(), identity.numpy()
    first: dict[int, int] = {}
    for i, label in enumerate(y.tolist()):
        first.setdefault(label, i)
    gallery_at = sorted(first.values())
    probes_at = [i for i in range(len(y)) if i not in set(gallery_at)]
    hits = 0
    for i in probes_at:
        best, best_j = -np.inf, -1
        for j in gallery_at:
            cos = float(p[i] @ g[j] / (np.linalg.norm(p[i]) * np.linalg.norm(g[j])))
            if cos > best:  # strict: ties keep the lower index
                best, best_j = cos, j
        hits += int(y[best_j] == y[i])
    return hits / len(probes_at)


def test_rank1_matches_a_brute_force_loop_and_the_identity_protocol() -> None:
    original, protected, identity = _embeddings(spread=2.0)
    expected = _brute_force_rank1(protected, original, identity)
    assert 0.2 < expected < 0.95  # neither trivial nor empty
    assert rank1_against_originals(protected, original, identity) == pytest.approx(expected, abs=1e-6)
    # the obfuscation baselines' protocol: obfuscated probes against the clean gallery
    assert rank1_against_originals(protected, original, identity) == pytest.approx(
        evaluate_identity(original, identity, protected)["rank1"], abs=1e-12
    )


def test_rank1_ties_go_to_the_lower_gallery_index_and_one_image_identities_fail() -> None:
    identity = torch.tensor([0, 1, 0, 0])
    # gallery rows 0 (identity 0) and 1 (identity 1) tie for every probe: row 0 wins, both probes hit
    tied = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert rank1_against_originals(tied, tied, identity) == pytest.approx(1.0)
    # gallery (1, 0) for identity 0 and (0, 1) for identity 1: probe 2 (0, 1) misses, probe 3 (1, 0) hits
    apart = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    assert rank1_against_originals(apart, apart, identity) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least two images"):
        rank1_against_originals(tied[:2], tied[:2], identity[:2])


def _protocol_collector(original, protected, identity) -> ProtectionEmbeddings:
    """The images protocol's collector filled by hand, in two batches whose dataset indices are shuffled."""
    n = identity.numel()
    order = torch.randperm(n, generator=torch.Generator().manual_seed(5))
    collector = ProtectionEmbeddings("images")
    for part in order.tensor_split(2):
        collector.add_images(
            {"original": original[part], "obfuscated": original[part].flip(1), "protected": protected[part]},
            identity[part],
            part,
        )
    return collector


def _identity_options(options: dict) -> dict:
    """The obfuscation baselines' protocol options for the same pairs and folds."""
    return {
        "num_pairs": options.get("num_pairs", 6000),
        "pair_seed": options.get("pair_seed", 0),
        "num_folds": options.get("num_folds", 10),
    }


@pytest.mark.parametrize(
    "options", [{}, {"distance": "cosine", "pair_seed": 3, "num_pairs": 2000, "num_folds": 5, "far": 1e-2}]
)
def test_identity_scores_equal_the_protection_protocol(options: dict) -> None:
    original, protected, identity = _embeddings(seed=1, spread=0.6)
    out = identity_scores(original, protected, identity, **options)
    far = options.get("far", 1e-3)
    protocol = {k: options[k] for k in ("distance", "pair_seed", "num_pairs", "num_folds") if k in options}
    result = evaluate_protection(_protocol_collector(original, protected, identity), **protocol)
    xdr = result.settings["prot_orig"]
    assert list(out) == ["rank-1", tar_key(far), "verification accuracy"]
    assert out[tar_key(far)] == xdr["tar_at_far_fold_mean"][far]
    assert out["verification accuracy"] == xdr["accuracy"]
    assert 0.0 < out[tar_key(far)] < 1.0 and 0.5 < out["verification accuracy"] < 1.0
    assert out["rank-1"] == rank1_against_originals(protected, original, identity)
    assert out["verification accuracy"] == pytest.approx(
        evaluate_identity(original, identity, protected, **_identity_options(options))["verif_acc"], abs=1e-12
    )


def _numpy_best_threshold(s: np.ndarray, y: np.ndarray) -> float:
    u = np.unique(s)
    candidates = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])
    correct = [int(((s >= t) == y).sum()) for t in candidates]
    return float(candidates[int(np.argmax(correct))])


def _numpy_kfold(s: np.ndarray, y: np.ndarray, fold: np.ndarray, far: float) -> tuple[float, float]:
    """k-fold TAR@FAR (threshold: at most floor(far * #training impostors) accepted) and k-fold accuracy."""
    tars, accs = [], []
    for f in np.unique(fold):
        test, train = fold == f, fold != f
        imp = np.sort(s[train & ~y])[::-1]
        k = int(np.floor(far * len(imp)))
        t = np.nextafter(imp[k], np.inf)  # just above the (k+1)-th highest: exactly k impostors accepted
        assert (imp >= t).sum() <= k
        tars.append(np.mean(s[test & y] >= t))
        threshold = _numpy_best_threshold(s[train], y[train])
        accs.append(np.mean((s[test] >= threshold) == y[test]))
    return float(np.mean(tars)), float(np.mean(accs))


def _angle_pairs(seed: int = 0):
    """Pairs in 2-D: protected_a at angle θ from original_b, so the angular similarity is 1 - θ/π."""
    rng = np.random.default_rng(seed)
    n, folds = 40, 4
    is_same = np.tile([True, False], n // 2)
    theta = np.where(is_same, rng.uniform(0.0, 1.6, n), rng.uniform(1.0, 3.0, n))
    base = rng.uniform(0, 2 * np.pi, n)  # original_b at angle `base`, protected_a at `base + θ`
    original_b = np.stack([np.cos(base), np.sin(base)], 1) * rng.uniform(0.5, 2.0, (n, 1))
    protected_a = np.stack([np.cos(base + theta), np.sin(base + theta)], 1)
    other = rng.normal(size=(n, 2))  # original_a / protected_b: not part of prot_orig
    fold = np.repeat(np.arange(folds), n // folds)
    tensors = [torch.from_numpy(x) for x in (other, original_b, protected_a, -other)]
    return tensors, torch.from_numpy(is_same), torch.from_numpy(fold), theta


def test_pair_identity_scores_match_numpy_and_the_pairs_protocol() -> None:
    (original_a, original_b, protected_a, protected_b), is_same, fold, theta = _angle_pairs()
    far = 0.2  # 15 training impostors per fold: 3 may be accepted
    out = pair_identity_scores(original_a, original_b, protected_a, protected_b, is_same, fold, far=far)
    assert list(out) == ["TAR@FAR=0.2", "verification accuracy"]
    tar, accuracy = _numpy_kfold(1.0 - theta / np.pi, is_same.numpy(), fold.numpy(), far)
    assert out["TAR@FAR=0.2"] == pytest.approx(tar, abs=1e-12)
    assert out["verification accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert 0.0 < tar < 1.0 and 0.5 < accuracy < 1.0

    collector = ProtectionEmbeddings("pairs")
    embeddings_a = {"original": original_a, "obfuscated": original_a, "protected": protected_a}
    embeddings_b = {"original": original_b, "obfuscated": original_b, "protected": protected_b}
    collector.add_pairs(embeddings_a, embeddings_b, is_same, fold, torch.arange(is_same.numel()))
    xdr = evaluate_protection(collector, fars=(far,)).settings["prot_orig"]
    assert out["TAR@FAR=0.2"] == xdr["tar_at_far_fold_mean"][far]
    assert out["verification accuracy"] == xdr["accuracy"]


def test_identity_inputs_are_checked() -> None:
    original, protected, identity = _embeddings()
    with pytest.raises(ValueError, match="identity_scores: `protected` has shape"):
        identity_scores(original, protected[:-1], identity)
    with pytest.raises(ValueError, match="identity_scores: `identity` must be 1-D with 73 entries"):
        identity_scores(original, protected, identity[:-1])
    with pytest.raises(ValueError, match=r"far must be a number in \(0, 1\)"):
        identity_scores(original, protected, identity, far=0.0)
    with pytest.raises(ValueError, match="num_pairs must be a positive even integer"):
        identity_scores(original, protected, identity, num_pairs=101)
    with pytest.raises(ValueError, match="distance must be one of"):
        identity_scores(original, protected, identity, distance="euclidean")
    zero = protected.clone()
    zero[3] = 0
    with pytest.raises(ValueError, match="`protected` has 1 all-zero row"):
        identity_scores(original, zero, identity)
    (oa, ob, pa, pb), is_same, fold, _ = _angle_pairs()
    with pytest.raises(ValueError, match="`fold` holds 1 distinct fold"):
        pair_identity_scores(oa, ob, pa, pb, is_same, torch.zeros_like(fold))
    with pytest.raises(ValueError, match="`is_same` must be boolean"):
        pair_identity_scores(oa, ob, pa, pb, is_same.long() * 2, fold)


def test_tar_key_names_the_far() -> None:
    assert tar_key(1e-3) == "TAR@FAR=1e-3"
    assert tar_key(0.01) == "TAR@FAR=1e-2"
    assert tar_key(0.1) == "TAR@FAR=1e-1"
    assert tar_key(0.05) == "TAR@FAR=0.05"
    with pytest.raises(ValueError, match="far must be"):
        tar_key(1.5)


# ---------------------------------------------------------------------------------------- flags and ε


def test_flag_rate_counts_probabilities_at_or_above_the_threshold() -> None:
    p = torch.tensor([0.1, 0.5, 0.49, 0.9])
    assert flag_rate(p) == 0.5
    assert flag_rate(p, threshold=0.9) == 0.25  # float32 0.9 is at the threshold 0.9
    assert flag_rate(torch.tensor([0.1, 0.9], dtype=torch.float64), threshold=0.9) == 0.5
    assert flag_rate(p.half(), threshold=0.9) == 0.25
    assert flag_rate(torch.tensor([0.8999]), threshold=0.9) == 0.0
    assert flag_rate(p.view(2, 2), threshold=0.0) == 1.0
    for bad, match in [
        (torch.tensor([0.2, 1.2]), r"must lie in \[0, 1\]"),
        (torch.tensor([math.nan]), "NaN"),
        (torch.tensor([]), "non-empty floating"),
        (torch.tensor([0, 1]), "non-empty floating"),
    ]:
        with pytest.raises(ValueError, match=match):
            flag_rate(bad)
    with pytest.raises(ValueError, match="threshold must be a number in"):
        flag_rate(p, threshold=2)


def test_dp_epsilons_on_the_served_record_shapes() -> None:
    pix = certify_dp_pix(m=1, cell=16, epsilon=0.5, rng=RngInfo.csprng()).record
    # a DP obfuscation: the guarantee is only in `formal_guarantee` (a record dict), pure ε certified
    assert dp_epsilons(
        {"method": "m", "obfuscator": {"epsilon": 9.0}, "formal_guarantee": pix.to_dict()}
    ) == (
        0.5,
        0.5,
    )
    assert dp_epsilons({"formal_guarantee": pix}) == (0.5, 0.5)  # the record object itself
    # a DP method stating its ε: certified sampler
    certified = certify_purkayastha(epsilon=2.0, dimension=512, rng=RngInfo.csprng()).record
    record = {
        "epsilon": 2.0,
        "epsilon_certified": certified.epsilon_certified,
        "certified": certified.certified,
        "formal_guarantee": certified.to_dict(),
    }
    assert certified.certified and certified.epsilon_certified == pytest.approx(2.0)
    assert dp_epsilons(record) == (2.0, certified.epsilon_certified)
    # an uncertified sampler: nominal ε only
    nominal = certify_angular_exponential(epsilon=4.0, dimension=512, rng=RngInfo.csprng()).record
    record = {
        "epsilon": 4.0,
        "epsilon_certified": None,
        "certified": False,
        "formal_guarantee": nominal.to_dict(),
    }
    assert dp_epsilons(record) == (4.0, None)
    assert dp_epsilons({"formal_guarantee": nominal.to_dict()}) == (4.0, None)
    assert dp_epsilons({**record, "epsilon_certified": 4.0}) == (4.0, None)  # certified: False wins
    # no formal guarantee
    assert dp_epsilons({"method": "m", "formal_guarantee": None, "reversible": False}) == (None, None)
    assert dp_epsilons({"method": "m"}) == (None, None)


def test_dp_epsilons_rejects_bad_records() -> None:
    with pytest.raises(ValueError, match="`privacy_record` must be a mapping"):
        dp_epsilons([("epsilon", 1.0)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`formal_guarantee` must be a privacy-record dict"):
        dp_epsilons({"formal_guarantee": "eps=1"})
    with pytest.raises(ValueError, match="`epsilon` must be a finite number >= 0"):
        dp_epsilons({"epsilon": -1.0})
    with pytest.raises(ValueError, match="epsilon_nominal` must be a number or None"):
        dp_epsilons({"formal_guarantee": {"epsilon_nominal": "1"}})
