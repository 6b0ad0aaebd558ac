import math

import pytest
from omegaconf import OmegaConf

from podexp.optim import lr_factor


def _cfg(**kw):
    return OmegaConf.create(kw)


def test_multistep_drops_tenfold_at_each_milestone():
    cfg = _cfg(name="multistep", milestones=[30, 60, 90], gamma=0.1)
    steps = 10
    for epoch, expected in [(0, 1.0), (29, 1.0), (30, 0.1), (59, 0.1), (60, 0.01), (90, 0.001), (99, 0.001)]:
        assert lr_factor(cfg, epoch * steps + 3, steps, 100) == pytest.approx(expected)


def test_linear_warmup_then_cosine_to_zero():
    cfg = _cfg(name="cosine", warmup_epochs=2)
    steps, epochs = 5, 10
    assert lr_factor(cfg, 0, steps, epochs) == pytest.approx(1 / 10)
    assert lr_factor(cfg, 9, steps, epochs) == pytest.approx(1.0)
    assert lr_factor(cfg, 10, steps, epochs) == pytest.approx(1.0)
    halfway = 10 + 20
    assert lr_factor(cfg, halfway, steps, epochs) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(cfg, 50, steps, epochs) == pytest.approx(0.0, abs=1e-12)
