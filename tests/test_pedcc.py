import math

import pytest
import torch

from podexp import pedcc
from podexp.errors import ConfigError
from podexp.pedcc import check_pedcc, make_pedcc


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
    assert (off + 1.0 / (k - 1)).abs().max() < 1e-5          # every pair at -1/(K-1)
    assert a.double().sum(0).norm() < 1e-5                     # centres sum to zero


def test_k_equals_d_plus_one_is_the_tightest_fit():
    a = make_pedcc(10, 9, "simplex")
    assert torch.linalg.matrix_rank(a.double()) == 9           # K-1 independent directions in R^(K-1)


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
    assert check_pedcc(spread, "iterative") is None             # unit norms
    def max_cos(points):
        return _pairwise_cos(points).fill_diagonal_(-2).max().item()
    assert max_cos(spread) < max_cos(random_points) - 0.1


def test_cache_is_checked_on_load(tmp_path, monkeypatch):
    monkeypatch.setenv("PODEXP_CACHE", str(tmp_path))
    first = make_pedcc(5, 8, seed=0)
    cached = pedcc.cache_dir() / "simplex_K5_d8_seed0.pt"
    assert cached.exists()
    cached.write_bytes(b"corrupt")                              # a truncated/garbled cache file
    assert torch.equal(make_pedcc(5, 8, seed=0), first)         # rebuilt, same centres
    torch.save(torch.randn(5, 8, dtype=torch.float64), cached)  # a wrong but readable file
    assert torch.equal(make_pedcc(5, 8, seed=0), first)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="simplex, iterative"):
        make_pedcc(5, 8, "spiral")


def test_regular_simplex_angle_for_three_classes():
    a = make_pedcc(3, 2, use_cache=False).double()
    angles = torch.arccos((a @ a.T).clamp(-1, 1))
    assert torch.allclose(angles[0, 1], torch.tensor(2 * math.pi / 3, dtype=torch.float64), atol=1e-6)
