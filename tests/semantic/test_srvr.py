"""SRVR over hand-made boxes: clipping to Ω, volume conventions and the spec table's counts."""
import math

import pytest
import torch

from rtool.errors import UsageError
from rtool.semantic import Region, srvr, srvr_by_method


def box(a, b):
    return torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)


def test_srvr_is_mean_volume_over_the_domain():
    boxes = [box([0, 0], [36, 10]), box([100, 0], [100.01, 0.01])]  # 360 and 1e-4 deg²
    summary = srvr(boxes)
    assert math.isclose(summary.value, (360 + 1e-4) / 2 / 36000)
    assert (summary.boxes, summary.near_zero, summary.over_domain, summary.nan_boxes) == (2, 1, 0, 0)
    assert math.isclose(srvr(boxes, volume="normalised").value, summary.value / 4)


def test_clipping_and_over_domain_and_nan_boxes():
    boxes = [box([-100, -50], [500, 150]), box([float("nan"), 0], [1, 1])]
    clipped, raw = srvr(boxes), srvr(boxes, clip=False)
    assert clipped.value == 1.0 and raw.value == pytest.approx(600 * 200 / 36000)
    assert (clipped.boxes, clipped.nan_boxes, clipped.over_domain) == (1, 1, 1)


def test_one_dimensional_domain_and_per_method_table():
    a, b = box([10], [100])
    assert srvr([(a, b)], n=1).value == pytest.approx(0.25)
    start = torch.zeros(1, dtype=torch.float64)
    regions = {m: [Region(m, start, a, b + k * 90, torch.zeros(1, 2, 1), torch.zeros(1))]
               for k, m in enumerate(("naive", "OIR_B"))}
    table = srvr_by_method(regions, n=1)
    assert table["naive"].value == pytest.approx(0.25) and table["OIR_B"].value == pytest.approx(0.5)
    assert table["mean"].value == pytest.approx(0.375)


def test_bad_input():
    with pytest.raises(UsageError, match="volume 'cube'"):
        srvr([box([0, 0], [1, 1])], volume="cube")
    with pytest.raises(UsageError, match="no regions"):
        srvr([])
    with pytest.raises(UsageError, match="expected 2 values"):
        srvr([box([0], [1])])


def test_table_over_optim_records():
    from rtool.semantic import srvr_table

    record = {"naive": {"regions": [{"a": torch.tensor([0.0, 0.0]), "b": torch.tensor([36.0, 10.0])}]},
              "OIR_B": {"regions": [{"a": torch.tensor([0.0, 0.0]), "b": torch.tensor([72.0, 10.0])}]}}
    table = srvr_table([record, record])
    assert table["naive"].value == pytest.approx(0.01) and table["OIR_B"].value == pytest.approx(0.02)
    assert table["mean"].value == pytest.approx(0.015) and table["naive"].boxes == 2
    with pytest.raises(UsageError, match="none of"):
        srvr_table([{"class_nb": 0}])
