"""The corner-case ConvNet training: the authors' recipe (constant-lr Adam), seeded, cached, and the digits default."""
import pytest
import torch
from torch import nn

import rtool.models.corner as corner
from rtool.data import ClassificationData, load_digits
from rtool.engine.seed import generator, seed_everything
from rtool.errors import UsageError
from rtool.models import (CornerTraining, build_corner_model, classification_accuracy, corner_training,
                          train_corner_model)

TINY = CornerTraining(epochs=1, lr=2e-4, batch_size=128)


@pytest.fixture(scope="module")
def tiny_digits():
    return load_digits("train").subset(range(0, 1437, 9))  # 160 images: one batch of 128 and one of 32


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_trains_caches_and_is_seeded(tiny_digits, tmp_path, monkeypatch):
    monkeypatch.setenv("RTOOL_CACHE", str(tmp_path))
    calls = []
    real = corner.train_classifier
    monkeypatch.setattr(corner, "train_classifier", lambda *a, **k: calls.append(k) or real(*a, **k))

    first = train_corner_model(tiny_digits, seed=3, training=TINY, progress=False)
    assert len(calls) == 1 and calls[0]["schedule"] == "constant" and calls[0]["weight_decay"] == 0.0
    assert calls[0]["lr"] == 2e-4 and calls[0]["batch_size"] == 128 and not first.training
    initial = build_corner_model(tiny_digits, 3)
    assert not _same_weights(first, initial)  # it did train

    second = train_corner_model(tiny_digits, seed=3, training=TINY, progress=False)
    assert len(calls) == 1 and _same_weights(first, second)  # from the cache
    assert len(list((tmp_path / "models").glob("corner_convnet-*.pt"))) == 1

    fresh = train_corner_model(tiny_digits, seed=3, training=TINY, progress=False, cache=False)
    assert _same_weights(first, fresh)  # same seed, same device → same model

    # a different training set (corner cases removed) is a different cache entry
    train_corner_model(tiny_digits.without([0]), seed=3, training=TINY, progress=False)
    assert len(calls) == 3 and len(list((tmp_path / "models").glob("corner_convnet-*.pt"))) == 2


def test_recipe_is_plain_adam_at_constant_lr(tiny_digits):
    """train_corner_model equals a hand-written loop: Adam(lr=2e-4), batch 128, reshuffled per epoch."""
    training = CornerTraining(epochs=2)
    ours = train_corner_model(tiny_digits, seed=5, training=training, progress=False, cache=False)

    model = build_corner_model(tiny_digits, 5)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    seed_everything(5)
    order_gen = generator(5)
    model.train()
    for _ in range(training.epochs):
        for index in torch.randperm(len(tiny_digits), generator=order_gen).split(128):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(tiny_digits.images[index]), tiny_digits.labels[index]).backward()
            optimizer.step()
    # channels_last training reorders float sums; a wrong recipe would differ by about lr (2e-4) per step
    for (name, a), b in zip(ours.state_dict().items(), model.state_dict().values()):
        assert float((a - b).abs().max()) < 1e-5, name


def test_seeds_give_different_models_and_leave_global_rng_alone(tiny_digits):
    state = torch.random.get_rng_state()
    a, b = build_corner_model(tiny_digits, 0), build_corner_model(tiny_digits, 1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not _same_weights(a, b) and _same_weights(a, build_corner_model(tiny_digits, 0))


def test_defaults_and_errors(tiny_digits):
    assert corner_training("mnist").epochs == 20 and corner_training("digits").epochs == corner.DIGITS_EPOCHS
    assert corner_training("digits", 3) == CornerTraining(epochs=3)
    with pytest.raises(UsageError, match="epochs"):
        corner_training("digits", 0)
    cifar_like = ClassificationData(torch.zeros(4, 3, 32, 32), torch.zeros(4, dtype=torch.long), ["a"], "cifar10", "train")
    with pytest.raises(UsageError, match="expects 3x28x28"):
        build_corner_model(cifar_like, 0)
    model = build_corner_model(tiny_digits, 0)
    accuracy = classification_accuracy(model, tiny_digits, batch_size=64)
    assert 0.0 <= accuracy <= 1.0
    wrong = ClassificationData(tiny_digits.images[:4], torch.zeros(4, dtype=torch.long), ["a", "b"], "x", "test")
    with pytest.raises(UsageError, match=r"expected \(batch, 2\)"):
        classification_accuracy(model, wrong)


def test_non_collective_cache_trains_on_any_rank_without_barrier(tiny_digits, tmp_path, monkeypatch):
    import rtool.models.train as train_module
    from rtool.engine.distributed import DistContext
    monkeypatch.setenv("RTOOL_CACHE", str(tmp_path))
    monkeypatch.setattr(train_module, "current",
                        lambda: DistContext(rank=1, world_size=2, local_rank=1, is_distributed=True))
    monkeypatch.setattr(train_module, "barrier", lambda: pytest.fail("barrier called for a per-rank model"))
    model = train_corner_model(tiny_digits.subset(range(40)), seed=7, training=TINY, progress=False,
                                 collective=False)
    assert isinstance(model, nn.Module) and len(list((tmp_path / "models").glob("*.pt"))) == 1
