"""Float64 numpy reference formulas for the loss tests (independent of podexp's own code)."""

from __future__ import annotations

import numpy as np
import torch


def np64(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().double().numpy()


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """mean_i -log softmax(logits_i)[y_i], written out with an explicit max shift."""
    total = 0.0
    for row, label in zip(logits, y):
        shifted = row - row.max()
        total += -(shifted[label] - np.log(np.exp(shifted).sum()))
    return total / len(y)


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def numeric_gradient(fn, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar ``fn`` at ``x`` (float64)."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        grad[index] = (fn(x + step) - fn(x - step)) / (2 * eps)
    return grad


def value_and_grad(loss, z: torch.Tensor, y: torch.Tensor, objective: int = 0):
    """(loss value, d loss / d z) of a podexp loss, as float64 numpy."""
    z = z.clone().requires_grad_(True)
    value = loss(z, y, objective=objective)
    value.backward()
    return value.item(), np64(z.grad)
