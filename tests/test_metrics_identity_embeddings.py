"""extract_embeddings: equals a direct forward pass, eval/no-grad, restores the module mode, clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from src.metrics.embeddings import extract_embeddings


class _Faces(Dataset):
    """A dict dataset as the project's DataModules yield it: image in [0, 1], identity, index."""

    def __init__(self, n: int = 23) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 3, 8, 8, generator=g)
        self.labels = torch.arange(n) % 5

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"image": self.images[i], "identity": self.labels[i], "index": torch.tensor(i)}


class _Net(nn.Module):
    """BatchNorm + Dropout: outputs differ between train and eval mode, so eval mode is observable."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(192, 16), nn.BatchNorm1d(16), nn.Dropout(0.5))

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images * 2 - 1)


def test_extract_embeddings_matches_direct_forward() -> None:
    torch.manual_seed(0)
    net, data = _Net(), _Faces()
    net.train()
    net.body[2].running_mean.uniform_(-0.5, 0.5)  # non-trivial eval statistics
    loader = DataLoader(data, batch_size=5, shuffle=True, generator=torch.Generator().manual_seed(1))
    emb, labels, indices = extract_embeddings(net, loader, progress=False)
    assert net.training  # mode restored
    assert emb.shape == (23, 16) and emb.dtype == torch.float32 and not emb.requires_grad
    assert sorted(indices.tolist()) == list(range(23)) and indices.tolist() != list(range(23))  # shuffled
    assert torch.equal(labels, data.labels[indices])
    net.eval()
    with torch.no_grad():
        expected = nn.functional.normalize(net(data.images[indices]), dim=1)
    torch.testing.assert_close(emb, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(23))

    raw, none_labels, _ = extract_embeddings(
        net, DataLoader(data, batch_size=7), normalize=False, label_key=None
    )
    assert none_labels is None
    with torch.no_grad():
        torch.testing.assert_close(raw, net(data.images), rtol=1e-5, atol=1e-6)


def test_extract_embeddings_tuple_batches_callables_and_positions() -> None:
    data = _Faces(9)
    batches = [(data.images[i : i + 4], data.labels[i : i + 4]) for i in range(0, 9, 4)]
    weights = torch.randn(192, 6, generator=torch.Generator().manual_seed(2))

    def recognizer(x: Tensor) -> Tensor:  # a plain callable, no parameters → CPU
        return x.flatten(1) @ weights

    emb, labels, indices = extract_embeddings(
        recognizer, batches, image_key=0, label_key=1, index_key=None, progress=False
    )
    assert indices.tolist() == list(range(9))  # running positions
    assert torch.equal(labels, data.labels)
    torch.testing.assert_close(emb, nn.functional.normalize(data.images.flatten(1) @ weights, dim=1))
    # dict batches without an "index" key also get running positions
    no_index = [{"image": data.images[:4], "identity": data.labels[:4]}]
    _, _, indices = extract_embeddings(recognizer, no_index, progress=False)
    assert indices.tolist() == [0, 1, 2, 3]


def test_extract_embeddings_errors() -> None:
    data = _Faces(6)
    net = _Net()
    batch = {"image": data.images[:3], "identity": data.labels[:3]}
    with pytest.raises(
        ValueError, match="extract_embeddings: batch 0 has no image key 'img'; keys: \\['identity'"
    ):
        extract_embeddings(net, [batch], image_key="img", progress=False)
    with pytest.raises(ValueError, match="extract_embeddings: batch 0 has no label key 'label'"):
        extract_embeddings(net, [batch], label_key="label", progress=False)
    with pytest.raises(
        ValueError, match="extract_embeddings: batch 0\\['identity'\\] must have shape \\[3\\]"
    ):
        extract_embeddings(net, [{**batch, "identity": data.labels[:2]}], progress=False)
    with pytest.raises(ValueError, match="extract_embeddings: batch 0\\['image'\\] must be \\[B, C, H, W\\]"):
        extract_embeddings(net, [{**batch, "image": data.images[0]}], progress=False)
    with pytest.raises(
        ValueError, match="extract_embeddings: the recognizer must return \\[B=3, D\\] embeddings"
    ):
        extract_embeddings(lambda x: x, [batch], progress=False)
    with pytest.raises(ValueError, match="extract_embeddings: the recognizer returned non-finite embeddings"):
        extract_embeddings(lambda x: x.flatten(1) / 0 - x.flatten(1) / 0, [batch], progress=False)
    with pytest.raises(ValueError, match="extract_embeddings: zero embedding in batch 0"):
        extract_embeddings(lambda x: torch.zeros(x.shape[0], 4), [batch], progress=False)
    with pytest.raises(ValueError, match="extract_embeddings: the dataloader yielded no batch"):
        extract_embeddings(net, [], progress=False)
    with pytest.raises(ValueError, match="extract_embeddings: batch 0 is a Tensor; expected a dict batch"):
        extract_embeddings(net, [data.images[:3]], progress=False)
    net.train()
    with pytest.raises(ValueError):
        extract_embeddings(net, [{"identity": data.labels[:3]}], progress=False)
    assert net.training  # restored after an error too
