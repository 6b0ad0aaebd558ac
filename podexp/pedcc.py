"""Predefined Evenly-Distributed Class Centroids (PEDCC), METHOD.md section 1.

``make_pedcc(K, d)`` returns K unit vectors in R^d, fixed before training:

* ``simplex`` (default): a regular simplex, every pairwise cosine exactly -1/(K-1), centres summing
  to zero. Built from the rows of I_K - 1/K (expressed in an orthonormal Helmert basis of the
  (K-1)-dimensional subspace orthogonal to the all-ones vector), zero-padded to d coordinates and
  rotated by a seeded random orthogonal matrix. Needs K <= d + 1.
* ``iterative``: the older "charge" model for K > d + 1: unit vectors repelled by Coulomb forces
  F_m = sum_n (u_m - u_n) / max(|u_m - u_n|, 0.01)^3, tangential part only, a velocity updated
  with step 0.01, renormalised each iteration. Only approximately even.

Results are deterministic for (K, d, method, seed) and cached on disk (``$PODEXP_CACHE`` or
``~/.cache/podexp``) so every run of a table uses the same centres; a cached file is checked on load.
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Literal

import torch

from podexp.io import atomic_torch_save
from podexp.fields import LatentDim, NumClasses
from podexp.registry import argument_problems, raise_problems

log = logging.getLogger(__name__)

PedccMethod = Literal["simplex", "iterative", "auto"]     # auto: simplex when K <= d + 1, else iterative
SIMPLEX_TOLERANCE = 1e-5


def cache_dir() -> Path:
    return Path(os.environ.get("PODEXP_CACHE", Path.home() / ".cache" / "podexp")) / "pedcc"


def _helmert_basis(k: int) -> torch.Tensor:
    """Orthonormal basis (k x (k-1)) of the subspace of R^k orthogonal to the all-ones vector."""
    basis = torch.zeros(k, k - 1, dtype=torch.float64)
    for j in range(1, k):
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -float(j)
        basis[:, j - 1] /= math.sqrt(j * (j + 1))
    return basis


def _random_rotation(d: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-random orthogonal d x d matrix: QR of a Gaussian matrix with the signs of R fixed."""
    gaussian = torch.randn(d, d, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


def simplex_pedcc(num_classes: int, dim: int, seed: int = 0) -> torch.Tensor:
    """The exact regular simplex (K <= d + 1), float64."""
    k = num_classes
    centred = torch.eye(k, dtype=torch.float64) - 1.0 / k
    coords = centred @ _helmert_basis(k)                       # K x (K-1), rows of norm sqrt((K-1)/K)
    coords = coords / coords.norm(dim=1, keepdim=True)
    padded = torch.zeros(k, dim, dtype=torch.float64)
    padded[:, : k - 1] = coords
    generator = torch.Generator().manual_seed(seed)
    return padded @ _random_rotation(dim, generator)


def iterative_pedcc(num_classes: int, dim: int, seed: int = 0, iterations: int = 200,
                    step: float = 0.01) -> torch.Tensor:
    """The Coulomb "charge" model, float64. Memory is O(K^2), not O(K^2 d)."""
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn(num_classes, dim, generator=generator, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    velocity = torch.zeros_like(u)
    for _ in range(iterations):
        sq_dist = (u.pow(2).sum(1, keepdim=True) + u.pow(2).sum(1) - 2.0 * u @ u.T).clamp_min(0.0)
        weight = sq_dist.sqrt().clamp_min(0.01).pow(-3)
        weight.fill_diagonal_(0.0)
        force = u * weight.sum(1, keepdim=True) - weight @ u    # sum_n w_mn (u_m - u_n)
        tangential = force - (force * u).sum(1, keepdim=True) * u
        velocity = velocity + step * tangential
        u = u + step * velocity
        u = u / u.norm(dim=1, keepdim=True)
    return u


def check_pedcc(centres: torch.Tensor, method: str) -> str | None:
    """Return a description of what is wrong with ``centres``, or None when they are valid."""
    if not torch.isfinite(centres).all():
        return "non-finite values"
    norms = centres.double().norm(dim=1)
    if (norms - 1).abs().max() > SIMPLEX_TOLERANCE:
        return f"norms deviate from 1 by {(norms - 1).abs().max():.2e}"
    if method == "simplex" and centres.shape[0] > 1:
        k = centres.shape[0]
        cos = centres.double() @ centres.double().T
        off = cos[~torch.eye(k, dtype=torch.bool)]
        err = (off + 1.0 / (k - 1)).abs().max().item()
        if err > SIMPLEX_TOLERANCE:
            return f"pairwise cosines deviate from -1/(K-1) by {err:.2e}"
    return None


def simplex_problem(num_classes: int, dim: int) -> str | None:
    """The rule of the exact simplex, K <= d + 1, as a sentence when it is broken (the config validator
    asks it too)."""
    if num_classes <= dim + 1:
        return None
    return (f"loss.pedcc_method=simplex: an exact simplex of K={num_classes} centres needs d >= K-1, but d={dim} "
            f"(K={num_classes} > d+1={dim + 1}). Raise dataset.latent_dim to at least {num_classes - 1} or use "
            f"loss.pedcc_method=auto (iterative PEDCC when K > d+1) or loss.pedcc_method=iterative.")


def resolve_method(num_classes: int, dim: int, method: str) -> str:
    """``auto`` -> the exact simplex when K <= d + 1, else the iterative generator (said in the log)."""
    if method != "auto":
        return method
    if num_classes <= dim + 1:
        return "simplex"
    log.warning("K=%d classes > d+1=%d: no exact simplex fits, so the PEDCC uses the iterative (charge) "
                "generator, which is only approximately even.", num_classes, dim + 1)
    return "iterative"


def make_pedcc(num_classes: NumClasses, dim: LatentDim, method: PedccMethod = "simplex", seed: int = 0,
               use_cache: bool = True) -> torch.Tensor:
    """K x d float32 tensor of unit class centres; row k is the centre of class k.

    ``method``: ``simplex`` (exact; K <= d + 1 or a ConfigError), ``iterative``, or ``auto``.
    """
    problems = argument_problems(make_pedcc, num_classes, dim, method)
    if not problems and method == "simplex":
        problems.append(simplex_problem(num_classes, dim))
    raise_problems("Cannot build the PEDCC:", problems)
    method = resolve_method(num_classes, dim, method)
    path = cache_dir() / f"{method}_K{num_classes}_d{dim}_seed{seed}.pt"
    if use_cache and path.exists():
        try:
            cached = torch.load(path, map_location="cpu", weights_only=True)
            problem = "wrong shape" if cached.shape != (num_classes, dim) else check_pedcc(cached, method)
        except Exception as err:  # a truncated or foreign file: rebuild it
            problem = f"unreadable ({err.__class__.__name__})"
        if problem is None:
            return cached.float()
        log.warning("Cached PEDCC %s is invalid (%s); regenerating it.", path, problem)
    build = simplex_pedcc if method == "simplex" else iterative_pedcc
    centres = build(num_classes, dim, seed)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(centres, path)
    return centres.float()
