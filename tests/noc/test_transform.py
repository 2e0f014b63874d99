"""rtool.noc.Corrupt in a torchvision.transforms.v2 pipeline, and the parameters API (log and replay)."""
import json

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from rtool.noc import Corrupt, CorruptionParams, apply_params, corrupt, draw_params
from rtool.ops import operators_loaded

pytestmark = pytest.mark.skipif(not operators_loaded(), reason="rtool._C is not built")


def image(seed=0, batch=None):
    shape = (3, 32, 32) if batch is None else (batch, 3, 32, 32)
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_single_image_with_index_matches_batch():
    x = image(batch=4)
    t = Corrupt("rain", seed=3)
    singles = torch.stack([t(x[i], index=10 + i) for i in range(4)])
    assert torch.equal(singles, corrupt(x, "rain", seed=3, indices=range(10, 14)))
    assert torch.equal(t(x, index=[10, 11, 12, 13]), singles)


def test_call_order_numbering_without_index():
    x = image(batch=3)
    t = Corrupt("rhombus", seed=1)
    first = torch.stack([t(x[i]) for i in range(3)])
    assert torch.equal(first, corrupt(x, "rhombus", seed=1, indices=[0, 1, 2]))


def test_in_a_v2_pipeline_with_labels_and_tv_tensors():
    pipeline = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), Corrupt("hue", seed=0)])
    uint8 = (image() * 255).byte()
    out, label = pipeline(uint8, 7)
    assert isinstance(out, tv_tensors.Image) and out.shape == (3, 32, 32) and label == 7
    raw = Corrupt("gaussian")(uint8)
    assert raw.dtype == torch.uint8 and raw.shape == uint8.shape


def test_last_params_log_and_replay():
    x = image(batch=2)
    t = Corrupt("artifacts", seed=4, mode="fast")
    out = t(x, index=[5, 6])
    records = t.last_params.as_records()
    assert [r["index"] for r in records] == [5, 6] and len(records[0]["line"]) == records[0]["count"]
    json.dumps(records)  # loggable as JSON
    assert torch.equal(t.apply(x, t.last_params), out)


def test_params_select_and_to():
    p = draw_params("circle", (32, 32), [0, 1, 2], seed=0)
    sub = p.select([2])
    assert isinstance(sub, CorruptionParams) and sub.indices.tolist() == [2]
    x = image(batch=3)
    assert torch.equal(apply_params(x[2:], sub), apply_params(x, p)[2:])
    assert p.to("cpu")["row"].device.type == "cpu"


def test_severity_fixes_the_magnitude():
    p = draw_params("obstruction", (224, 224), 5, severity=1.0)
    assert p["side"].tolist() == [125] * 5
    q = draw_params("quantization", (32, 32), 5, severity=0.0)
    assert q["levels"].tolist() == [8] * 5


def test_half_precision_images():
    x = image(batch=2).half()
    out = corrupt(x, "blur")
    assert out.dtype == torch.float16 and out.shape == x.shape


def test_replaying_params_on_wrong_batch_is_a_usage_error():
    from rtool.errors import UsageError

    p = draw_params("hue", (32, 32), 2)
    with pytest.raises(UsageError, match="parameters for 2 images given for a batch of 3"):
        apply_params(image(batch=3), p)
    with pytest.raises(UsageError, match="drawn for 32x32 images"):
        apply_params(torch.rand(2, 3, 40, 40), p)


def test_corrupted_dataset_is_keyed_on_the_index():
    from torch.utils.data import DataLoader, TensorDataset

    from rtool.noc import CorruptedDataset

    x = image(batch=6)
    data = CorruptedDataset(TensorDataset(x, torch.arange(6)), "salt_pepper", seed=2)
    expected = corrupt(x, "salt_pepper", seed=2)
    for batch_size in (1, 4):
        got = torch.cat([imgs for imgs, _ in DataLoader(data, batch_size=batch_size)])
        assert torch.equal(got, expected)
