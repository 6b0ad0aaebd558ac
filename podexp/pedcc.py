"""Predefined Evenly-Distributed Class Centroids (PEDCC), docs/method.md §1.

``make_pedcc(K, d)`` returns K unit vectors in R^d, fixed before training:

* ``simplex`` (default): a regular simplex, every pairwise cosine exactly -1/(K-1), centres summing
  to zero. Built from the rows of I_K - 1/K (expressed in an orthonormal Helmert basis of the
  (K-1)-dimensional subspace orthogonal to the all-ones vector), zero-padded to d coordinates and
  rotated by a seeded random orthogonal matrix. Needs K <= d + 1.
* ``iterative``: the older "charge" model of PEDCC-Loss for K > d + 1: unit vectors repelled by
  Coulomb forces F_m = sum_n (u_m - u_n) / max(|u_m - u_n|, 0.01)^3, tangential part only, a
  velocity updated with step 0.01, each point moved by its whole velocity and renormalised, until the
  minimum pairwise angle stops growing (see ``iterative_pedcc``). Only approximately even:
  ``min_pairwise_angle`` says how even.

``load_pedcc(path, K, d)`` reads a centre file instead (``loss.pedcc_path``: .npy, .pt or .pkl, a K x d
array or a {class index: vector} mapping as the authors' PEDCC code pickles it), so their own centres can
be used bit for bit; it passes the same check as a cached file.

Results are deterministic for (K, d, method, seed) and cached on disk (``$PODEXP_CACHE`` or
``~/.cache/podexp``) so every run of a table uses the same centres; a cached file is checked on load.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Annotated, Literal

import torch

from podexp.errors import ConfigError
from podexp.fields import LatentDim, NumClasses
from podexp.io import atomic_torch_save
from podexp.registry import Pattern, argument_problems, raise_problems

log = logging.getLogger(__name__)

# loss.pedcc_path: a stored K x d centre file (load_pedcc)
PedccFile = Annotated[str, Pattern(r".+\.(npy|pt|pkl)", "a path ending in .npy, .pt or .pkl")]
PedccMethod = Literal["simplex", "iterative", "auto"]  # auto: simplex when K <= d + 1, else iterative
SIMPLEX_TOLERANCE = 1e-5
# Version of the iterative algorithm, part of its cache file name: bump it whenever the algorithm's output
# changes, so that centres cached by an older version are not reused (v1: a velocity step scaled by 0.01
# twice and a fixed 200 iterations, which did not converge).
ITERATIVE_VERSION = 2
WORK_BUDGET = 1.2e12
MAX_ITERATIONS = 100_000


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
    coords = centred @ _helmert_basis(k)  # K x (K-1), rows of norm sqrt((K-1)/K)
    coords = coords / coords.norm(dim=1, keepdim=True)
    padded = torch.zeros(k, dim, dtype=torch.float64)
    padded[:, : k - 1] = coords
    generator = torch.Generator().manual_seed(seed)
    return padded @ _random_rotation(dim, generator)


def min_pairwise_angle(centres: torch.Tensor) -> float:
    """The smallest angle (degrees) between two of the K unit rows of ``centres``."""
    unit = centres.double() / centres.double().norm(dim=1, keepdim=True)
    return _min_angle_from_gram(unit @ unit.T)


def _min_angle_from_gram(gram: torch.Tensor) -> float:
    off_diagonal = gram - 3.0 * torch.eye(gram.shape[0], dtype=gram.dtype)
    return math.degrees(math.acos(off_diagonal.max().clamp(-1.0, 1.0).item()))


def iteration_cap(num_classes: int, dim: int) -> int:
    """At most ``WORK_BUDGET`` multiply-adds (one iteration costs about K²d), and never more than
    ``MAX_ITERATIONS``: 100,000 iterations for small problems, about 1,560 for K = 1000, d = 768."""
    return int(min(MAX_ITERATIONS, max(1, WORK_BUDGET // (num_classes * num_classes * dim))))


def iterative_pedcc(
    num_classes: int,
    dim: int,
    seed: int = 0,
    step: float = 0.01,
    tolerance_deg: float = 1e-3,
    patience: int = 200,
    max_iterations: int | None = None,
) -> torch.Tensor:
    """The charge model of PEDCC-Loss (Zhu et al.), float64; O(K²) memory, O(K²d) time per iteration.

    Unit vectors start Gaussian (seeded). Each iteration: Coulomb forces F_m = Σ_n (u_m − u_n) /
    max(‖u_m − u_n‖, 0.01)³, their tangential part F_t = F − (F·u)u; every point moves by its whole
    velocity and is renormalised, u ← (u + v)/‖u + v‖, then v ← v + step·F_t.
    Stops when the best minimum pairwise angle seen has grown by less than ``tolerance_deg`` degrees over
    the last ``patience`` iterations, or after ``max_iterations`` (default :func:`iteration_cap`) with a
    warning. Returns the configuration with the largest minimum pairwise angle seen.
    """
    cap = iteration_cap(num_classes, dim) if max_iterations is None else max_iterations
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn(num_classes, dim, generator=generator, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    velocity = torch.zeros_like(u)
    best_u, history = u, []  # history[i]: best minimum angle after i iterations
    for iteration in range(cap + 1):
        gram = u @ u.T
        angle = _min_angle_from_gram(gram)
        if not history or angle > history[-1]:
            best_u = u
        history.append(max(angle, history[-1]) if history else angle)
        if iteration >= patience and history[-1] - history[-1 - patience] < tolerance_deg:
            log.info(
                "Iterative PEDCC K=%d d=%d: converged after %d iterations; minimum pairwise angle %.3f°.",
                num_classes,
                dim,
                iteration,
                history[-1],
            )
            return best_u
        if iteration == cap:
            break
        sq_norm = gram.diagonal()
        distance = (sq_norm.unsqueeze(1) + sq_norm - 2.0 * gram).clamp_min(0.0).sqrt()
        weight = distance.clamp_min(0.01).pow(-3)
        weight.fill_diagonal_(0.0)
        force = u * weight.sum(1, keepdim=True) - weight @ u  # sum_n w_mn (u_m - u_n)
        tangential = force - (force * u).sum(1, keepdim=True) * u
        moved = u + velocity
        u = moved / moved.norm(dim=1, keepdim=True)
        velocity = velocity + step * tangential
    log.warning(
        "Iterative PEDCC K=%d d=%d: stopped at the cap of %d iterations while the minimum pairwise "
        "angle was still growing (%.4f° over the last %d iterations); using the best configuration "
        "seen, minimum pairwise angle %.3f°. The centres are valid unit vectors, only less evenly "
        "spread than a longer run would make them.",
        num_classes,
        dim,
        cap,
        history[-1] - history[max(0, len(history) - 1 - patience)],
        patience,
        history[-1],
    )
    return best_u


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
    return (
        f"loss.pedcc_method=simplex: an exact simplex of K={num_classes} centres needs d >= K-1, but d={dim} "
        f"(K={num_classes} > d+1={dim + 1}). Raise dataset.latent_dim to at least {num_classes - 1} or use "
        f"loss.pedcc_method=auto (iterative PEDCC when K > d+1) or loss.pedcc_method=iterative."
    )


def crowding_problem(num_classes: int, dim: int, allow_crowded: bool = False) -> str | None:
    """The rule that d can separate K classes by direction, as a sentence when it is broken: unit centres
    in d = 1 lie on the 0-sphere {-1, +1}, so at most 2 classes get distinct centres. Any d >= 2 holds K
    distinct centres (the iterative PEDCC when K > d + 1, e.g. Fig. 6's K = 5, d = 2). The config
    validator asks it too; ``loss.allow_crowded_pedcc=true`` overrides it."""
    if allow_crowded or dim >= 2 or num_classes <= 2:
        return None
    return (
        f"dataset.latent_dim={dim}: PEDCC centres are unit vectors, and in d=1 there are only two (+1 and -1), "
        f"so K={num_classes} classes cannot be told apart and the run would train to chance. Use "
        f"dataset.latent_dim >= 2 (any d >= 2 works: the iterative PEDCC when K > d+1, an exact simplex from "
        f"d = {num_classes - 1}), or set loss.allow_crowded_pedcc=true to train anyway."
    )


def resolve_method(num_classes: int, dim: int, method: str) -> str:
    """``auto`` -> the exact simplex when K <= d + 1, else the iterative generator (said in the log)."""
    if method != "auto":
        return method
    if num_classes <= dim + 1:
        return "simplex"
    log.warning(
        "K=%d classes > d+1=%d: no exact simplex fits, so the PEDCC uses the iterative (charge) "
        "generator, which is only approximately even.",
        num_classes,
        dim + 1,
    )
    return "iterative"


def cache_name(method: str) -> str:
    return f"iterative-v{ITERATIVE_VERSION}" if method == "iterative" else method


def make_pedcc(
    num_classes: NumClasses,
    dim: LatentDim,
    method: PedccMethod = "simplex",
    seed: int = 0,
    use_cache: bool = True,
    allow_crowded: bool = False,
) -> torch.Tensor:
    """K x d float32 tensor of unit class centres; row k is the centre of class k.

    ``method``: ``simplex`` (exact; K <= d + 1 or a ConfigError), ``iterative``, or ``auto``. d = 1 with
    K > 2 is a ConfigError unless ``allow_crowded`` (``crowding_problem``).
    """
    problems = argument_problems(make_pedcc, num_classes, dim, method)
    if not problems:
        problems += [crowding_problem(num_classes, dim, allow_crowded)]
        problems += [simplex_problem(num_classes, dim)] if method == "simplex" else []
    raise_problems("Cannot build the PEDCC:", problems)
    method = resolve_method(num_classes, dim, method)
    path = cache_dir() / f"{cache_name(method)}_K{num_classes}_d{dim}_seed{seed}.pt"
    if use_cache and path.exists():
        try:
            cached = torch.load(path, map_location="cpu", weights_only=True)
            problem = "wrong shape" if cached.shape != (num_classes, dim) else check_pedcc(cached, method)
        except Exception as err:  # a truncated or foreign file: rebuild it
            problem = f"unreadable ({err.__class__.__name__})"
        if problem is None:
            if method == "iterative":
                log.info(
                    "Iterative PEDCC K=%d d=%d from %s: minimum pairwise angle %.3f°.",
                    num_classes,
                    dim,
                    path,
                    min_pairwise_angle(cached),
                )
            return cached.float()
        log.warning("Cached PEDCC %s is invalid (%s); regenerating it.", path, problem)
    build = simplex_pedcc if method == "simplex" else iterative_pedcc
    centres = build(num_classes, dim, seed)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(centres, path)
    return centres.float()


PEDCC_FILE_TYPES = (".npy", ".pt", ".pkl")


def _read_centre_file(path: Path):
    if path.suffix == ".npy":
        import numpy as np

        return np.load(path, allow_pickle=False)
    if path.suffix == ".pt":
        return torch.load(path, map_location="cpu", weights_only=True)
    import pickle

    with open(path, "rb") as handle:  # a pickle runs code: use only centre files you trust
        return pickle.load(handle)


def _as_matrix(data) -> torch.Tensor:
    """A K x d float64 tensor from an array, a tensor, a list of rows or a {class index: row} mapping."""
    if isinstance(data, dict):
        data = [data[k] for k in sorted(data)]
    if isinstance(data, (list, tuple)):
        return torch.stack([torch.as_tensor(row, dtype=torch.float64).reshape(-1) for row in data])
    return torch.as_tensor(data, dtype=torch.float64)


def load_pedcc(path: str | Path, num_classes: int, dim: int) -> torch.Tensor:
    """The K x d float32 centres stored in ``path`` (``loss.pedcc_path``), checked like a cached PEDCC:
    the right shape, finite, unit rows (row k is the centre of class k)."""
    path = Path(path).expanduser()
    fix = (
        f"Point loss.pedcc_path at a {'/'.join(PEDCC_FILE_TYPES)} file holding a {num_classes} x {dim} array "
        f"of unit rows (K = dataset.num_classes, d = dataset.latent_dim), or set loss.pedcc_path=null to build "
        f"the PEDCC."
    )
    if path.suffix not in PEDCC_FILE_TYPES:
        raise ConfigError(f"loss.pedcc_path={path}: unknown file type '{path.suffix}'. {fix}")
    if not path.is_file():
        raise ConfigError(f"loss.pedcc_path={path}: no such file. {fix}")
    try:
        centres = _as_matrix(_read_centre_file(path))
    except Exception as err:
        raise ConfigError(f"loss.pedcc_path={path}: cannot read it ({err.__class__.__name__}: {err}). {fix}") from None
    if tuple(centres.shape) != (num_classes, dim):
        raise ConfigError(f"loss.pedcc_path={path}: holds an array of shape {tuple(centres.shape)}. {fix}")
    problem = check_pedcc(centres, "file")
    if problem is not None:
        raise ConfigError(f"loss.pedcc_path={path}: the centres are invalid ({problem}). {fix}")
    log.info(
        "PEDCC K=%d d=%d read from %s: minimum pairwise angle %.3f°.",
        num_classes,
        dim,
        path,
        min_pairwise_angle(centres),
    )
    return centres.float()
