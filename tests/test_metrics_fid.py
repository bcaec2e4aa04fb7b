"""FID vs independent references: the Fréchet distance of the features against ``scipy.linalg.sqrtm`` (small
random feature network) and against the nuclear-norm closed form (2048-d Inception features); the default
extractor loads the manifest-resolved weights exactly as torch-fidelity does. Nothing is downloaded: the
Inception test uses a random-initialised stand-in file whose checksum is patched into the manifest."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torchvision
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

import src.weights.core as weights_core
from src.metrics.fid import FID, FID_INCEPTION_WEIGHTS
from src.weights import ChecksumMismatchError, MissingWeightsError, WeightsError, load_manifest


class SmallFeatures(nn.Module):
    """A fixed random conv net → 6-d features (a stand-in for Inception in tests)."""

    num_features = 6

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 6, kernel_size=3, stride=2)
        self.seen: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(x)
        return torch.tanh(self.conv(x)).mean(dim=(2, 3)) + x.mean(dim=(1, 2, 3))[:, None]


def _reference_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """The textbook formula with scipy's matrix square root (float64)."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def _images(n: int, seed: int, size: int = 24) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def test_fid_matches_scipy_sqrtm_on_the_same_features() -> None:
    real, fake = _images(40, 1), _images(30, 2) ** 2  # two different distributions
    metric = FID(feature=SmallFeatures())
    for batch in real.split(16):
        metric.update(batch, real=True)
    for batch in fake.split(7):
        metric.update(batch, real=False)
    value = metric.compute()
    extractor = SmallFeatures()  # same seed, same weights
    with torch.no_grad():
        f_real = extractor((real * 255 + 0.5).floor() / 255).double().numpy()
        f_fake = extractor((fake * 255 + 0.5).floor() / 255).double().numpy()
    expected = _reference_fid(f_real, f_fake)
    assert expected > 1e-3
    assert float(value) == pytest.approx(expected, rel=1e-5)
    # the set statistic does not depend on how the images were batched
    again = FID(feature=SmallFeatures())
    again.update(real, real=True)
    again.update(fake, real=False)
    assert float(again.compute()) == pytest.approx(float(value), rel=1e-6)


def test_fid_quantises_like_an_image_file_and_accepts_uint8() -> None:
    """Float input is rounded to 8 bits as save_image does; the same pixels as uint8 give the same FID; the
    custom network receives float32 in [0, 1]."""
    real, fake = _images(12, 3), _images(12, 4)
    net = SmallFeatures()
    metric = FID(feature=net)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    seen = net.seen[-1]
    assert seen.dtype == torch.float32 and float(seen.min()) >= 0 and float(seen.max()) <= 1
    torch.testing.assert_close(seen * 255, fake.mul(255).add(0.5).floor(), rtol=0, atol=1e-4)
    as_uint8 = FID(feature=SmallFeatures())
    as_uint8.update((real * 255 + 0.5).to(torch.uint8), real=True)
    as_uint8.update((fake * 255 + 0.5).to(torch.uint8), real=False)
    assert float(as_uint8.compute()) == pytest.approx(float(metric.compute()), rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero_and_reset_keeps_real_features() -> None:
    real = _images(20, 5)
    metric = FID(feature=SmallFeatures(), reset_real_features=False)
    metric.update(real, real=True)
    metric.update(real, real=False)
    assert abs(float(metric.compute())) < 1e-5
    metric.reset()
    metric.update(_images(20, 6) * 0.5, real=False)
    assert float(metric.compute()) > 1e-3  # the real statistics survived reset()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.update(torch.rand(2, 1, 8, 8), real=True), r"shape \[B, 3, H, W\]"),
        (lambda m: m.update(torch.rand(2, 3, 8), real=True), r"shape \[B, 3, H, W\]"),
        (lambda m: m.update(torch.rand(2, 3, 8, 8) * 2 - 1, real=True), r"must be in \[0, 1\]"),
        (lambda m: m.update(torch.full((2, 3, 8, 8), float("nan")), real=True), "non-finite"),
        (lambda m: m.update(torch.ones(2, 3, 8, 8, dtype=torch.int32), real=True), "uint8 or floating"),
        (lambda m: m.update(torch.rand(2, 3, 8, 8), real=1), "`real` must be a bool"),
        (lambda m: m.update(np.zeros((2, 3, 8, 8)), real=True), "must be a torch.Tensor"),
        (
            lambda m: (m.update(torch.rand(3, 3, 8, 8), real=True), m.compute()),
            "1 real and 0 fake|3 real and 0",
        ),
    ],
)
def test_fid_bad_input(call, message: str) -> None:  # type: ignore[no-untyped-def]
    metric = FID(feature=SmallFeatures())
    with pytest.raises(ValueError, match=f"FID: .*({message})"):
        call(metric)


def test_fid_refuses_unknown_feature_sizes() -> None:
    for feature in (100, True, "2048"):
        with pytest.raises(ValueError, match=r"FID: feature must be one of \(64, 192, 768, 2048\)"):
            FID(feature=feature)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# The default extractor: manifest weights, never downloaded
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def isolated_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty weights folder and torch hub cache; returns the weights folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("PROFACE_WEIGHTS", str(tmp_path / "weights"))
    (tmp_path / "weights").mkdir()
    return tmp_path / "weights"


def test_missing_inception_weights_error_names_file_and_place(isolated_weights: Path) -> None:
    entry = load_manifest()[FID_INCEPTION_WEIGHTS]
    assert entry.file == "weights-inception-2015-12-05-6726825d.pth" and entry.sha256.startswith("6726825d")
    with pytest.raises(MissingWeightsError) as info:
        FID()
    message = str(info.value)
    assert entry.file in message and str(isolated_weights / entry.file) in message
    assert f"python -m src.weights fetch {FID_INCEPTION_WEIGHTS}" in message


def test_foreign_inception_file_is_refused(isolated_weights: Path) -> None:
    (isolated_weights / load_manifest()[FID_INCEPTION_WEIGHTS].file).write_bytes(b"not the weights")
    with pytest.raises(ChecksumMismatchError):
        FID()


def _stand_in_weights(weights_dir: Path, monkeypatch: pytest.MonkeyPatch, state: object) -> Path:
    """Save ``state`` under the manifest's file name and patch its checksum and size into the manifest."""
    manifest = load_manifest()
    entry = manifest[FID_INCEPTION_WEIGHTS]
    path = weights_dir / entry.file
    torch.save(state, path)
    manifest[FID_INCEPTION_WEIGHTS] = replace(
        entry, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), size_bytes=path.stat().st_size
    )
    monkeypatch.setattr(weights_core, "load_manifest", lambda path=None: manifest)
    return path


def test_non_state_dict_file_never_reaches_the_unpickler(
    isolated_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stand_in_weights(isolated_weights, monkeypatch, {"weights": [1, 2, 3]})
    with pytest.raises(WeightsError, match="not a state dict of tensors"):
        FID()


def _trace_sqrt_closed_form(a: np.ndarray, b: np.ndarray) -> float:
    """Tr sqrt(Σ_a Σ_b) for sample rows ``a`` [n, D], ``b`` [m, D]. The nonzero eigenvalues of
    Σ_a Σ_b = A_cᵀ A_c B_cᵀ B_c / ((n-1)(m-1)) are those of (A_c B_cᵀ)(A_c B_cᵀ)ᵀ / ((n-1)(m-1)), so the
    trace of the square root is the nuclear norm of the small n × m matrix A_c B_cᵀ over sqrt((n-1)(m-1)):
    exact for rank-deficient covariances, and independent of any matrix square root."""
    ac, bc = a - a.mean(0), b - b.mean(0)
    return float(np.linalg.svd(ac @ bc.T, compute_uv=False).sum() / np.sqrt((len(a) - 1) * (len(b) - 1)))


def test_closed_form_reference_agrees_with_scipy_sqrtm() -> None:
    g = np.random.default_rng(0)
    a, b = g.normal(size=(40, 6)), g.normal(size=(30, 6)) * 1.5 + 0.3
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    assert _trace_sqrt_closed_form(a, b) == pytest.approx(
        np.trace(scipy.linalg.sqrtm(s1 @ s2).real), rel=1e-10
    )


def test_default_extractor_is_torch_fidelity_inception_with_the_resolved_weights(
    isolated_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A random-initialised Inception in torch-fidelity's layout stands in for the real file. ``FID()`` holds
    exactly its weights in torch-fidelity's extractor (2048-d tap, TF1-compatible resize); the distance is
    checked on the 64-d tap of the same network (cheap: the 2048-d one needs the whole network per image and
    a 2048×2048 eigendecomposition) against torch-fidelity's own extractor and the closed form above."""
    torch.manual_seed(11)
    stand_in = torchvision.models.inception_v3(
        weights=None, aux_logits=False, num_classes=1008, init_weights=False
    )
    path = _stand_in_weights(isolated_weights, monkeypatch, stand_in.state_dict())

    default = FID()
    assert default.inception.features_list == ["2048"] and default.inception.use_antialias is False
    loaded = default.inception.state_dict()
    assert loaded.keys() == stand_in.state_dict().keys()
    assert all(torch.equal(loaded[key], value) for key, value in stand_in.state_dict().items())

    real, fake = _images(2, 7, size=32), _images(2, 8, size=32) ** 3
    metric = FID(feature=64)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    reference = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["64"], feature_extractor_weights_path=str(path)
    )
    with torch.no_grad():
        a, b = (reference((x * 255 + 0.5).to(torch.uint8))[0].double().numpy() for x in (real, fake))
    np.testing.assert_allclose(metric.real_features_sum.numpy(), a.sum(0), rtol=1e-6)
    np.testing.assert_allclose(metric.fake_features_sum.numpy(), b.sum(0), rtol=1e-6)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    mean_term = ((a.mean(0) - b.mean(0)) ** 2).sum()
    expected = mean_term + np.trace(s1) + np.trace(s2) - 2 * _trace_sqrt_closed_form(a, b)
    assert expected > 1e-2
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-4)
