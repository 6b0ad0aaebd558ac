import numpy as np
import pytest
import torch
from numpy_reference import cross_entropy, np64

from podexp.losses import build


def test_value_is_cross_entropy_of_wz_plus_b():
    torch.manual_seed(1)
    loss = build("softmax", num_classes=4, latent_dim=3)
    z, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 1])
    logits = np64(z) @ np64(loss.weight).T + np64(loss.fc.bias)
    assert loss(z, y).item() == pytest.approx(cross_entropy(logits, y.numpy()), rel=1e-5)


def test_predict_is_wz_plus_b():
    torch.manual_seed(2)
    loss = build("softmax", num_classes=4, latent_dim=3)
    z = torch.randn(7, 3)
    expected = np64(z) @ np64(loss.weight).T + np64(loss.fc.bias)
    np.testing.assert_allclose(np64(loss.predict(z)), expected, rtol=1e-5, atol=1e-6)
    assert (loss.predict(z).argmax(1).numpy() == expected.argmax(1)).all()
