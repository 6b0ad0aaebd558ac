"""Statistics on latent features: norm-split accuracy (Table 1), eigenvalue spreads of the normalised
features' covariance and of the SC loss's matrix (Table 5) and Gaussian discriminant analysis (Table 9)."""

from __future__ import annotations

import math

import torch


def norm_split_accuracy(z: torch.Tensor, labels: torch.Tensor, pred: torch.Tensor) -> dict[str, float]:
    """Accuracy (%) of the samples whose ‖z‖ is below the mean norm and of those at or above it (Table 1).

    A side with no sample gets NaN.
    """
    norms = z.double().norm(dim=1)
    low = norms < norms.mean()
    correct = (pred == labels).double()

    def acc(mask):
        return 100.0 * correct[mask].mean().item() if mask.any() else math.nan

    return {"low_norm": acc(low), "high_norm": acc(~low)}


def _eigenvalue_spread(rows: torch.Tensor) -> float:
    """Population variance (1/d) Σ_j (λ_j − λ̄)² of the eigenvalues of RᵀR/(N−1), R = ``rows`` (N x d)."""
    matrix = rows.T @ rows / (rows.shape[0] - 1)
    return torch.linalg.eigvalsh(matrix).var(unbiased=False).item()


def _unit(z: torch.Tensor) -> torch.Tensor:
    return z.double() / z.double().norm(dim=1, keepdim=True).clamp_min(1e-12)


def eigenvalue_variance(z: torch.Tensor) -> float:
    """Table 5, ``feature_cov`` column: variance of the eigenvalues of the covariance of ẑ = z/‖z‖.

    C = (1/(N−1)) Σ_i (ẑ_i − m)(ẑ_i − m)ᵀ with m the mean of ẑ; λ_1..λ_d its eigenvalues;
    the statistic is (1/d) Σ_j (λ_j − λ̄)². It is 0 when the energy of the normalised features is spread
    evenly over all d directions and grows as it concentrates in few of them. Dominated by the spread of
    the class centres (between-class structure), not by the residuals that the SC loss acts on.
    """
    unit = _unit(z)
    return _eigenvalue_spread(unit - unit.mean(dim=0))


def sc_eigenvalue_variance(z: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor) -> float:
    """Table 5, ``sc_matrix`` column: variance of the eigenvalues of the SC loss's own matrix.

    R = ẑ − a_y (each normalised feature minus the centre of its class, rows of ``centres``);
    C = RᵀR/(N−1), the matrix POD's self-correlation term is built from (no mean subtraction);
    statistic (1/d) Σ_j (λ_j − λ̄)² = ‖C‖²_F/d − (tr C/d)². SC penalises C's off-diagonal entries, which
    lowers Σ_j λ_j² = ‖C‖²_F for a given diagonal, so POD should score below NaC here.
    """
    return _eigenvalue_spread(_unit(z) - centres.double()[labels])


GDA_COVARIANCES = ("per_class", "shared")
LEDOIT_WOLF = "ledoit_wolf"


def ledoit_wolf_intensity(centred: torch.Tensor) -> float:
    """Ledoit & Wolf's (2004) shrinkage weight ρ towards (tr S/d)·I for the rows of ``centred`` (n x d).

    S = XᵀX/n, m = tr S/d; ρ = min(b², δ²)/δ² with δ² = ‖S − m I‖²_F (how far S is from the target) and
    b² = (1/n²) Σ_k ‖x_k x_kᵀ − S‖²_F = (Σ_k ‖x_k‖⁴ − n‖S‖²_F)/n² (how noisy S is). The weight minimises
    the expected squared Frobenius error of (1 − ρ)S + ρ m I; it grows as n/d shrinks and tends to 0
    as n grows. ρ = 1 when S already is a multiple of I (shrinking then changes nothing).
    """
    n = centred.shape[0]
    sample = centred.T @ centred / n
    scale = sample.diagonal().mean()
    distance = (sample - scale * torch.eye(sample.shape[0], dtype=sample.dtype)).pow(2).sum()
    noise = (centred.pow(2).sum(1).pow(2).sum() - n * sample.pow(2).sum()) / n**2
    if distance <= 0:
        return 1.0
    return (torch.minimum(noise, distance) / distance).item()


class GaussianDiscriminant:
    """Gaussian discriminant analysis on latent features (the paper's Table 9).

    One Gaussian per class: class mean μ_k and covariance Σ_k (``per_class``, the default, as the paper
    describes it) or one pooled within-class covariance Σ (``shared``); each shrunk towards (tr Σ/d)·I,
    (1 − ρ)Σ + ρ(tr Σ/d)·I, so it is invertible. ``shrinkage``: ``ledoit_wolf`` (ρ estimated from the
    class's own residuals, :func:`ledoit_wolf_intensity`) or a fixed ρ in [0, 1]. Prior π_k = class
    frequency. Predicts argmax_k log N(z; μ_k, Σ_k) + log π_k.
    """

    def __init__(self, covariance: str = "per_class", shrinkage: float | str = LEDOIT_WOLF):
        if covariance not in GDA_COVARIANCES:
            raise ValueError(f"covariance must be one of {', '.join(GDA_COVARIANCES)}; got {covariance!r}")
        if shrinkage != LEDOIT_WOLF and not (isinstance(shrinkage, (int, float)) and 0.0 <= shrinkage <= 1.0):
            raise ValueError(f"shrinkage must be '{LEDOIT_WOLF}' or a number in [0, 1]; got {shrinkage!r}")
        self.covariance, self.shrinkage = covariance, shrinkage

    def _shrunk(self, residual: torch.Tensor, dof: int) -> torch.Tensor:
        """The shrunk covariance of ``residual`` (rows: samples minus their class mean), divided by ``dof``."""
        cov = residual.T @ residual / max(dof, 1)
        rho = ledoit_wolf_intensity(residual) if self.shrinkage == LEDOIT_WOLF else float(self.shrinkage)
        d = cov.shape[0]
        target = torch.eye(d, dtype=cov.dtype) * (cov.diagonal().sum() / d).clamp_min(1e-12)
        return (1 - rho) * cov + rho * target

    def fit(self, z: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None):
        z = z.double()
        k = int(labels.max()) + 1 if num_classes is None else num_classes
        counts = torch.bincount(labels, minlength=k).double()
        if (counts == 0).all():
            raise ValueError("GDA needs at least one training sample")
        # a class without training samples has prior 0 (log prior -inf): it is never predicted
        self.means = torch.stack([z[labels == c].mean(0) if counts[c] else z.new_zeros(z.shape[1]) for c in range(k)])
        self.log_prior = (counts / counts.sum()).log()
        residual = z - self.means[labels]
        if self.covariance == "shared":
            covs = [self._shrunk(residual, len(z) - k)]
        else:
            covs = [
                self._shrunk(residual[labels == c], int(counts[c]) - 1)
                if counts[c]
                else torch.eye(z.shape[1], dtype=z.dtype)
                for c in range(k)
            ]
        self.chols = [torch.linalg.cholesky(cov) for cov in covs]
        return self

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        """(N, K): log N(z; μ_k, Σ_k) + log π_k, whitening z by the Cholesky factor of each Σ."""
        z = z.double()
        d = z.shape[1]
        columns = []
        for c, mean in enumerate(self.means):
            chol = self.chols[0 if self.covariance == "shared" else c]
            white = torch.linalg.solve_triangular(chol, (z - mean).T, upper=False)
            log_det = 2 * chol.diagonal().log().sum()
            columns.append(-0.5 * (white.pow(2).sum(0) + log_det + d * math.log(2 * math.pi)))
        return torch.stack(columns, dim=1) + self.log_prior

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        return self.log_joint(z).argmax(1)


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * (pred == labels).double().mean().item()
