"""Statistics on latent features against answers known by construction or computed by hand."""

import math

import numpy as np
import pytest
import torch

from podexp.analysis.stats import (
    GaussianDiscriminant,
    accuracy,
    eigenvalue_variance,
    ledoit_wolf_intensity,
    norm_split_accuracy,
    sc_eigenvalue_variance,
)


def test_norm_split_accuracy_counts_each_side_by_hand():
    # norms 1, 2, 3, 10 -> mean 4: the first three are "low"; 2 of them correct; the high one wrong
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 10.0]])
    labels = torch.tensor([0, 1, 1, 0])
    pred = torch.tensor([0, 1, 0, 1])
    result = norm_split_accuracy(z, labels, pred)
    assert result["low_norm"] == pytest.approx(100 * 2 / 3)
    assert result["high_norm"] == pytest.approx(0.0)


def test_norm_split_accuracy_empty_side_is_nan():
    z = torch.ones(4, 3)  # all norms equal the mean: none below it
    result = norm_split_accuracy(z, torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    assert math.isnan(result["low_norm"]) and result["high_norm"] == 100.0


def test_eigenvalue_variance_is_zero_for_isotropic_unit_features():
    # ±e_1..±e_d, scaled: normalised they have mean 0 and covariance (N/(N-1))·I/d, all eigenvalues equal
    d = 6
    basis = torch.cat([torch.eye(d), -torch.eye(d)]) * torch.arange(1, 2 * d + 1).unsqueeze(1)
    assert eigenvalue_variance(basis) == pytest.approx(0.0, abs=1e-15)


def test_eigenvalue_variance_matches_hand_computation():
    # 2-D: ±e_1 three times each, ±e_2 once each -> N = 8, mean 0; C = diag(6, 2)/7
    rows = [[1, 0]] * 3 + [[-1, 0]] * 3 + [[0, 5], [0, -5]]
    z = torch.tensor(rows, dtype=torch.float32) * 2.5
    lam = np.array([6 / 7, 2 / 7])
    assert eigenvalue_variance(z) == pytest.approx(np.var(lam), rel=1e-9)


def test_eigenvalue_variance_against_numpy_on_random_data():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(200, 5, generator=gen) * torch.tensor([3.0, 1, 1, 0.5, 0.1])
    zd = z.double().numpy()
    unit = zd / np.linalg.norm(zd, axis=1, keepdims=True)
    expected = np.var(np.linalg.eigvalsh(np.cov(unit, rowvar=False)))
    assert eigenvalue_variance(z) == pytest.approx(expected, rel=1e-9)


CENTRES_2D = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])


def test_sc_eigenvalue_variance_by_hand():
    # ẑ = (0, 1), (0, -1), (1, 0) with labels 0, 1, 0 -> R = (-1, 1), (1, -1), (0, 0)
    # C = RᵀR/(3-1) = [[1, -1], [-1, 1]]: eigenvalues 0 and 2, variance 1
    z = torch.tensor([[0.0, 3.0], [0.0, -0.5], [2.0, 0.0]])
    assert sc_eigenvalue_variance(z, torch.tensor([0, 1, 0]), CENTRES_2D) == pytest.approx(1.0, rel=1e-12)
    # the centred-covariance reading of the same features: mean (1/3, 0); C = diag(1/3, 1) -> var 1/9
    assert eigenvalue_variance(z) == pytest.approx(1 / 9, rel=1e-12)


def test_sc_eigenvalue_variance_is_zero_on_the_centres_and_for_isotropic_residuals():
    on_centres = torch.tensor([[2.0, 0.0], [-5.0, 0.0], [0.5, 0.0]])
    assert sc_eigenvalue_variance(on_centres, torch.tensor([0, 1, 0]), CENTRES_2D) == 0.0
    # zero centres, so R = ẑ = ±e_1, ±e_2, ±e_3: C = (2/5)·I, three equal eigenvalues
    centres = torch.zeros(2, 3)
    z = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    assert sc_eigenvalue_variance(z, torch.tensor([0, 1, 0, 1, 0, 1]), centres) == pytest.approx(0.0, abs=1e-15)


def test_sc_eigenvalue_variance_against_numpy_on_random_data():
    gen = np.random.default_rng(3)
    z, labels = gen.normal(size=(50, 4)), gen.integers(0, 3, size=50)
    centres = gen.normal(size=(3, 4))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    r = z / np.linalg.norm(z, axis=1, keepdims=True) - centres[labels]
    expected = np.var(np.linalg.eigvalsh(r.T @ r / 49))
    got = sc_eigenvalue_variance(torch.tensor(z), torch.tensor(labels), torch.tensor(centres))
    assert got == pytest.approx(expected, rel=1e-10)


def _numpy_log_joint(z, means, covs, priors):
    out = np.zeros((len(z), len(means)))
    for k, (mu, cov) in enumerate(zip(means, covs)):
        diff = z - mu
        maha = np.einsum("nd,de,ne->n", diff, np.linalg.inv(cov), diff)
        _, logdet = np.linalg.slogdet(cov)
        out[:, k] = -0.5 * (maha + logdet + z.shape[1] * np.log(2 * np.pi)) + np.log(priors[k])
    return out


@pytest.mark.parametrize("covariance", ["shared", "per_class"])
def test_gda_log_joint_matches_numpy(covariance):
    gen = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], [30, 20, 10])
    z = gen.normal(size=(60, 3)) + np.array([[0, 0, 0], [3, 0, 0], [0, 3, 0]])[labels]
    shrink = 0.2
    means = np.stack([z[labels == k].mean(0) for k in range(3)])
    resid = z - means[labels]

    def shrunk(cov):
        return (1 - shrink) * cov + shrink * np.trace(cov) / 3 * np.eye(3)

    if covariance == "shared":
        covs = [shrunk(resid.T @ resid / (60 - 3))] * 3
    else:
        covs = [shrunk(np.cov(z[labels == k], rowvar=False)) for k in range(3)]
    priors = np.array([30, 20, 10]) / 60
    gda = GaussianDiscriminant(covariance, shrink).fit(torch.tensor(z), torch.tensor(labels))
    test = gen.normal(size=(15, 3)) * 2
    expected = _numpy_log_joint(test, means, covs, priors)
    got = gda.log_joint(torch.tensor(test)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(gda.predict(torch.tensor(test)).numpy(), expected.argmax(1))


def _numpy_ledoit_wolf(x):
    """Ledoit & Wolf (2004), Lemmas 3.2-3.4, term by term (x: centred rows)."""
    n, d = x.shape
    s = x.T @ x / n
    m = np.trace(s) / d
    delta = np.sum((s - m * np.eye(d)) ** 2)
    beta = sum(np.sum((np.outer(row, row) - s) ** 2) for row in x) / n**2
    return min(beta, delta) / delta


@pytest.mark.parametrize("n,d", [(5, 8), (40, 3)])
def test_ledoit_wolf_intensity_matches_the_formula(n, d):
    x = np.random.default_rng(n).normal(size=(n, d)) * np.linspace(0.5, 3, d)
    x -= x.mean(0)
    rho = ledoit_wolf_intensity(torch.tensor(x))
    assert rho == pytest.approx(_numpy_ledoit_wolf(x), rel=1e-10)
    assert 0.0 < rho <= 1.0


def test_ledoit_wolf_intensity_is_one_when_already_isotropic():
    # ±e_1, ±e_2 in 2-D: S = I/2 exactly, nothing to shrink towards
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    assert ledoit_wolf_intensity(x) == 1.0


def _tight_and_wide_classes():
    """Class 0 tight (std 0.3) at the origin, class 1 wide (std 3) at (3, 0); test points where one
    pooled covariance (≈ 4.5 I) and one covariance per class disagree."""
    gen = np.random.default_rng(7)
    labels = np.repeat([0, 1], [60, 40])
    z = np.where(labels[:, None] == 0, 0.3, 3.0) * gen.normal(size=(100, 2)) + np.array([[0, 0], [3, 0]])[labels]
    test = np.array([[0.0, 2.0], [0.0, -2.5], [-2.0, 0.0], [0.2, 0.1], [0.4, 0.0], [6.0, 1.0]])
    return z, labels, test


def test_per_class_gda_matches_numpy_and_differs_from_pooled():
    z, labels, test = _tight_and_wide_classes()
    means = np.stack([z[labels == k].mean(0) for k in range(2)])
    covs = []
    for k in range(2):
        resid = z[labels == k] - means[k]
        cov = resid.T @ resid / (len(resid) - 1)
        rho = _numpy_ledoit_wolf(resid)
        covs.append((1 - rho) * cov + rho * np.trace(cov) / 2 * np.eye(2))
    expected = _numpy_log_joint(test, means, covs, np.array([0.6, 0.4]))
    gda = GaussianDiscriminant().fit(torch.tensor(z), torch.tensor(labels))  # the default: per class
    np.testing.assert_allclose(gda.log_joint(torch.tensor(test)).numpy(), expected, rtol=1e-9, atol=1e-9)
    per_class = gda.predict(torch.tensor(test)).numpy()
    np.testing.assert_array_equal(per_class, expected.argmax(1))
    pooled = GaussianDiscriminant("shared").fit(torch.tensor(z), torch.tensor(labels)).predict(torch.tensor(test))
    assert per_class.tolist() == [1, 1, 1, 0, 0, 1]  # far from the tight class: the wide one
    assert (pooled.numpy() != per_class).sum() >= 3  # pooled (≈ 4.5 I): the near mean


def test_per_class_gda_with_fewer_samples_than_dimensions_is_finite():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(8, 6, generator=gen, dtype=torch.float64) + torch.tensor([0.0, 4.0]).repeat_interleave(4)[:, None]
    labels = torch.tensor([0] * 4 + [1] * 4)  # 4 samples per class in d = 6
    log_joint = GaussianDiscriminant().fit(z, labels).log_joint(z)
    assert torch.isfinite(log_joint).all()


def test_gda_separates_well_separated_classes():
    gen = torch.Generator().manual_seed(0)
    centres = torch.eye(4) * 10
    labels = torch.arange(400) % 4
    z = centres[labels] + torch.randn(400, 4, generator=gen)
    gda = GaussianDiscriminant("shared", 0.1).fit(z[:200], labels[:200])
    assert accuracy(gda.predict(z[200:]), labels[200:]) == 100.0


def test_gda_rejects_bad_settings_and_empty_classes():
    with pytest.raises(ValueError):
        GaussianDiscriminant("diagonal")
    with pytest.raises(ValueError):
        GaussianDiscriminant("shared", 1.5)
    with pytest.raises(ValueError):
        GaussianDiscriminant("shared", "oracle")


def test_gda_never_predicts_a_class_without_training_samples():
    z = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    gda = GaussianDiscriminant("per_class", 0.5).fit(z, torch.tensor([0, 0, 2, 2]), num_classes=3)
    log_joint = gda.log_joint(torch.tensor([[0.0, 0.1], [5.0, 5.1]]))
    assert torch.isinf(log_joint[:, 1]).all() and gda.predict(torch.tensor([[0.0, 0.1], [5.0, 5.1]])).tolist() == [0, 2]
