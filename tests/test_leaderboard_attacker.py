"""The parrot attacker (src.leaderboarding.attacker): a deep-copied panel recognizer fine-tuned with an
ArcFace head on protected faces; the panel's own copy stays untouched and the tuned copy recognises better."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from src.leaderboarding.attacker import fine_tune_parrot, trainable_modules
from src.leaderboarding.recognizers import PanelRecognizer
from src.networks.recognizers import FaceRecognizer

SIZE = 16


class TinyRecognizer(FaceRecognizer):
    """A small random FaceRecognizer-like network (16 px input, 16-d embeddings)."""

    input_size = (SIZE, SIZE)
    embedding_dim = 16

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, 2, 1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.fc = nn.Linear(32 * (SIZE // 4) ** 2, self.embedding_dim)
        self.features = nn.BatchNorm1d(self.embedding_dim)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(self.fc(self.body(x)))


def _recognizer(seed: int = 0) -> PanelRecognizer:
    torch.manual_seed(seed)
    return PanelRecognizer("tiny", TinyRecognizer().freeze(), {"kind": "zoo", "zoo": "tiny"})


def _faces(identities: int, per_identity: int, seed: int, size: int = 24) -> tuple[Tensor, Tensor]:
    """Identity = a 4x4 colour pattern; each image adds a strong random colour cast and pixel noise."""
    patterns = torch.rand(identities, 3, 4, 4, generator=torch.Generator().manual_seed(1234))
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(identities).repeat_interleave(per_identity)
    base = torch.nn.functional.interpolate(patterns[labels], size=(size, size), mode="nearest")
    cast = (torch.rand(labels.shape[0], 3, 1, 1, generator=generator) - 0.5) * 1.2
    noise = torch.randn(base.shape, generator=generator) * 0.2
    return (0.5 * base + 0.25 + cast + noise).clamp(0, 1), labels


def _rank1(embeddings: Tensor, labels: Tensor) -> float:
    """Brute-force leave-one-out nearest neighbour (cosine) in numpy."""
    e = embeddings.double().numpy()
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    similarity = e @ e.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(axis=1)
    y = labels.numpy()
    return float((y[nearest] == y).mean())


def _state(module: nn.Module) -> dict[str, Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def test_parrot_learns_protected_identities_and_leaves_the_panel_copy_untouched() -> None:
    recognizer = _recognizer()
    before = _state(recognizer.network)
    train_images, train_labels = _faces(6, 12, seed=1)
    test_images, test_labels = _faces(6, 10, seed=2)
    losses: list[float] = []
    parrot = fine_tune_parrot(
        recognizer,
        train_images,
        train_labels * 7 + 3,
        steps=120,
        batch_size=24,
        lr=3e-3,
        seed=0,
        progress=lambda step, loss: losses.append(loss),
    )
    untuned, tuned = (
        _rank1(recognizer.embed(test_images), test_labels),
        _rank1(parrot.embed(test_images), test_labels),
    )
    assert tuned >= 0.9 and tuned > untuned + 0.3, (untuned, tuned)
    assert len(losses) == 120 and np.mean(losses[-10:]) < np.mean(losses[:10])
    after = _state(recognizer.network)
    assert all(torch.equal(before[key], after[key]) for key in before)  # the panel's copy is untouched
    tuned_state = _state(parrot.network)
    assert any(not torch.equal(before[key], tuned_state[key]) for key in before if key.endswith("weight"))
    assert parrot.name == "tiny (parrot)" and parrot.network is not recognizer.network
    record = parrot.source["parrot"]
    assert (record["steps"], record["images"], record["identities"]) == (120, 72, 6)
    assert parrot.source["zoo"] == "tiny" and "parrot" not in recognizer.source
    assert not any(p.requires_grad for p in parrot.network.parameters()) and not parrot.network.training
    parrot.network.train()
    assert not parrot.network.training  # frozen again: stays in eval mode


def test_parrot_is_deterministic_under_its_seed_and_keeps_the_global_rng() -> None:
    images, labels = _faces(3, 4, seed=3)
    state = torch.random.get_rng_state()
    first = fine_tune_parrot(_recognizer(), images, labels, steps=4, batch_size=5, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = fine_tune_parrot(_recognizer(), images, labels, steps=4, batch_size=5, seed=7)
    other = fine_tune_parrot(_recognizer(), images, labels, steps=4, batch_size=5, seed=8)
    a, b, c = _state(first.network), _state(second.network), _state(other.network)
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert any(not torch.equal(a[key], c[key]) for key in a)


def test_last_layers_only_train_the_final_linear_and_what_follows() -> None:
    recognizer = _recognizer()
    assert [type(m).__name__ for m in trainable_modules(recognizer.network, "last")] == [
        "Linear",
        "BatchNorm1d",
    ]
    before = _state(recognizer.network)
    images, labels = _faces(3, 4, seed=4)
    parrot = fine_tune_parrot(recognizer, images, labels, steps=3, batch_size=6, train_layers="last")
    after = _state(parrot.network)
    body = [key for key in before if key.startswith("body.")]
    assert body and all(torch.equal(before[key], after[key]) for key in body)  # BN statistics included
    assert not torch.equal(before["fc.weight"], after["fc.weight"])


def test_plain_networks_with_an_input_size_are_tuned_too() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 8))
    net.input_size = 8  # type: ignore[assignment]
    recognizer = PanelRecognizer("plain", net.eval().requires_grad_(False), {})
    images, labels = _faces(2, 3, seed=5)
    parrot = fine_tune_parrot(recognizer, images, labels, steps=2, batch_size=4)
    assert parrot.embed(images).shape == (6, 8)
    assert not torch.equal(net[1].weight, parrot.network[1].weight)


@pytest.mark.parametrize(
    ("images", "labels", "options", "message"),
    [
        (torch.rand(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), {}, "at least 2 identities"),
        (torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0]), {}, "4 images but 3 identities"),
        (torch.rand(4, 3, 8, 8) * 255, torch.tensor([0, 1, 0, 1]), {}, r"\[0, 1\]"),
        (torch.rand(4, 8, 8), torch.tensor([0, 1, 0, 1]), {}, r"\[N, 3, H, W\]"),
        (torch.rand(4, 3, 8, 8), torch.tensor([0.0, 1.0, 0.0, 1.0]), {}, "integer labels"),
        (torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0, 1]), {"train_layers": "some"}, "train_layers"),
        (torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0, 1]), {"steps": 0}, "steps >= 1"),
    ],
)
def test_bad_inputs_are_refused(images: Tensor, labels: Tensor, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fine_tune_parrot(_recognizer(), images, labels, **options)
