import math
import re

import pytest
import torch

from podexp import pedcc
from podexp.errors import ConfigError
from podexp.losses import build as build_loss
from podexp.pedcc import check_pedcc, iterative_pedcc, make_pedcc, min_pairwise_angle


def _pairwise_cos(a):
    a = a.double()
    return (a @ a.T) / (a.norm(dim=1)[:, None] * a.norm(dim=1)[None, :])


@pytest.mark.parametrize("k,d", [(2, 1), (3, 2), (10, 9), (10, 256), (100, 512), (11, 10)])
def test_simplex_geometry(k, d):
    a = make_pedcc(k, d, "simplex", seed=3)
    assert a.shape == (k, d) and a.dtype == torch.float32
    assert torch.allclose(a.double().norm(dim=1), torch.ones(k, dtype=torch.float64), atol=1e-6)
    cos = _pairwise_cos(a)
    off = cos[~torch.eye(k, dtype=torch.bool)]
    assert (off + 1.0 / (k - 1)).abs().max() < 1e-5  # every pair at -1/(K-1)
    assert a.double().sum(0).norm() < 1e-5  # centres sum to zero


def test_k_equals_d_plus_one_is_the_tightest_fit():
    a = make_pedcc(10, 9, "simplex")
    assert torch.linalg.matrix_rank(a.double()) == 9  # K-1 independent directions in R^(K-1)


def test_deterministic_per_seed_and_different_across_seeds():
    one = make_pedcc(10, 32, seed=1, use_cache=False)
    again = make_pedcc(10, 32, seed=1, use_cache=False)
    other = make_pedcc(10, 32, seed=2, use_cache=False)
    assert torch.equal(one, again)
    assert not torch.allclose(one, other)


def test_simplex_with_too_many_classes_is_a_clear_error():
    with pytest.raises(ConfigError) as err:
        make_pedcc(12, 10, "simplex")
    message = str(err.value)
    assert "K=12" in message and "d=10" in message
    assert "iterative" in message and "latent_dim" in message


def test_auto_falls_back_to_iterative_and_says_so(caplog):
    with caplog.at_level("WARNING"):
        a = make_pedcc(12, 4, "auto", use_cache=False)
    assert a.shape == (12, 4)
    assert "iterative" in caplog.text
    assert make_pedcc(10, 9, "auto", use_cache=False).allclose(make_pedcc(10, 9, "simplex", use_cache=False))


def test_iterative_spreads_random_points():
    k, d = 30, 5
    gen = torch.Generator().manual_seed(0)
    random_points = torch.nn.functional.normalize(torch.randn(k, d, generator=gen, dtype=torch.float64), dim=1)
    spread = make_pedcc(k, d, "iterative", seed=0, use_cache=False)
    assert check_pedcc(spread, "iterative") is None  # unit norms

    def max_cos(points):
        return _pairwise_cos(points).fill_diagonal_(-2).max().item()

    assert max_cos(spread) < max_cos(random_points) - 0.1


def test_cache_is_checked_on_load(tmp_path, monkeypatch):
    monkeypatch.setenv("PODEXP_CACHE", str(tmp_path))
    first = make_pedcc(5, 8, seed=0)
    cached = pedcc.cache_dir() / "simplex_K5_d8_seed0.pt"
    assert cached.exists()
    cached.write_bytes(b"corrupt")  # a truncated/garbled cache file
    assert torch.equal(make_pedcc(5, 8, seed=0), first)  # rebuilt, same centres
    torch.save(torch.randn(5, 8, dtype=torch.float64), cached)  # a wrong but readable file
    assert torch.equal(make_pedcc(5, 8, seed=0), first)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="simplex, iterative"):
        make_pedcc(5, 8, "spiral")


def test_regular_simplex_angle_for_three_classes():
    a = make_pedcc(3, 2, use_cache=False).double()
    angles = torch.arccos((a @ a.T).clamp(-1, 1))
    assert torch.allclose(angles[0, 1], torch.tensor(2 * math.pi / 3, dtype=torch.float64), atol=1e-6)


def _circle_gaps_deg(points):
    angles = torch.sort(torch.rad2deg(torch.atan2(points[:, 1].double(), points[:, 0].double()))).values
    return torch.diff(torch.cat([angles, angles[:1] + 360.0]))


def test_iterative_five_points_on_a_circle_are_72_degrees_apart():
    gaps = _circle_gaps_deg(make_pedcc(5, 2, "iterative", use_cache=False))
    assert (gaps - 72.0).abs().max() < 0.5, gaps


def test_iterative_twelve_points_in_3d_form_the_icosahedron():
    icosahedron = math.degrees(math.atan(2.0))  # 63.43°: angle between adjacent vertices
    assert abs(min_pairwise_angle(make_pedcc(12, 3, "iterative", use_cache=False)) - icosahedron) < 0.5


def test_iterative_is_deterministic_per_seed():
    assert torch.equal(
        make_pedcc(12, 3, "iterative", seed=4, use_cache=False), make_pedcc(12, 3, "iterative", seed=4, use_cache=False)
    )


@pytest.mark.parametrize("k,d", [(3, 2), (5, 4), (5, 8), (769, 768)])
def test_auto_with_k_at_most_d_plus_one_is_the_exact_simplex(k, d):
    a = make_pedcc(k, d, "auto", use_cache=False)
    assert check_pedcc(a, "simplex") is None  # every cosine -1/(K-1) to 1e-5
    assert min_pairwise_angle(a) == pytest.approx(math.degrees(math.acos(-1.0 / (k - 1))), abs=1e-3)


def test_iterative_stops_when_the_angle_stops_growing_and_says_so(caplog):
    with caplog.at_level("INFO", logger="podexp.pedcc"):
        iterative_pedcc(5, 2, seed=0)
    assert "converged after" in caplog.text and "72.000°" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="podexp.pedcc"):
        capped = iterative_pedcc(5, 2, seed=2, max_iterations=30)
    assert "cap of 30 iterations" in caplog.text
    assert f"{min_pairwise_angle(capped):.3f}°" in caplog.text  # the best configuration seen is returned


def test_centres_cached_by_the_old_iterative_algorithm_are_not_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("PODEXP_CACHE", str(tmp_path))
    old = torch.nn.functional.normalize(torch.randn(5, 2, dtype=torch.float64), dim=1)
    pedcc.cache_dir().mkdir(parents=True)
    torch.save(old, pedcc.cache_dir() / "iterative_K5_d2_seed0.pt")  # the file name before v2
    fresh = make_pedcc(5, 2, "iterative")
    assert (_circle_gaps_deg(fresh) - 72.0).abs().max() < 0.5
    assert (pedcc.cache_dir() / f"iterative-v{pedcc.ITERATIVE_VERSION}_K5_d2_seed0.pt").exists()


# Before the fix (commit 807fe7f: velocity step scaled by 0.01 twice, a fixed 200 iterations) the
# iterative PEDCC of K=1000, d=768, seed 0 had a minimum pairwise angle of 83.917° (measured with
# min_pairwise_angle on that commit's iterative_pedcc(1000, 768, seed=0)).
OLD_ALGORITHM_MIN_ANGLE_K1000_D768 = 83.917


@pytest.mark.slow
def test_iterative_for_vit_on_imagenet_1000_reports_its_angle_and_beats_the_old_algorithm(caplog):
    # through the session's PEDCC cache (tests/conftest.py): the smoke run of Table 8 (ViT on ImageNet-1000,
    # tests/test_tables_smoke.py) later in the session then reuses these centres instead of building them again
    with caplog.at_level("INFO", logger="podexp.pedcc"):
        centres = make_pedcc(1000, 768, "auto")
    angle = min_pairwise_angle(centres)
    logged = re.search(r"minimum pairwise angle ([0-9.]+)°", caplog.text)
    assert logged and float(logged.group(1)) == pytest.approx(angle, abs=2e-3)
    assert angle > OLD_ALGORITHM_MIN_ANGLE_K1000_D768


def test_d1_cannot_hold_more_than_two_centres_unless_allowed():
    """d = 1 with K > 2 once trained to chance with only a warning; d >= 2 holds any K (Fig. 6: K=5, d=2)."""
    with pytest.raises(ConfigError, match="K=3 classes cannot be told apart.*loss.allow_crowded_pedcc=true"):
        make_pedcc(3, 1, "auto", use_cache=False)
    with pytest.raises(ConfigError, match="dataset.latent_dim=1"):
        build_loss("pod", num_classes=10, latent_dim=1)
    assert build_loss("pod", num_classes=10, latent_dim=1, allow_crowded_pedcc=True).pedcc.shape == (10, 1)
    assert make_pedcc(2, 1, "auto", use_cache=False).flatten().tolist() in ([1.0, -1.0], [-1.0, 1.0])
    assert min_pairwise_angle(make_pedcc(5, 2, "auto", use_cache=False)) > 70
