import torch

from podexp.data.loaders import TensorLoader


def _loader(n=50, **kw):
    images = torch.randint(0, 256, (n, 1, 4, 4), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    labels = torch.arange(n) % 5
    opts = dict(batch_size=8, mean=[0.0], std=[1.0], train=True, crop_padding=1, hflip=True, seed=3)
    opts.update(kw)
    return TensorLoader(images, labels, **opts)


def _epoch(loader, epoch, start_step=0):
    loader.set_epoch(epoch, start_step)
    return list(loader)


def test_epoch_is_a_permutation_without_repeats():
    loader = _loader(train=True, crop_padding=0, hflip=False)
    labels = torch.cat([y for _, y in _epoch(loader, 0)])
    assert len(loader) == 6 and len(labels) == 48  # drop_last in training
    images = torch.cat([x for x, _ in _epoch(loader, 0)])
    assert len({tuple(x.flatten().tolist()) for x in images}) == 48


def test_same_seed_and_epoch_give_the_same_batches_and_epochs_differ():
    a, b = _epoch(_loader(), 1), _epoch(_loader(), 1)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    c = _epoch(_loader(), 2)
    assert not all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(a, c))


def test_resuming_mid_epoch_sees_the_remaining_batches_exactly():
    full = _epoch(_loader(), 4)
    tail = _epoch(_loader(), 4, start_step=3)
    assert len(tail) == len(full) - 3
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(full[3:], tail))


def test_shards_are_disjoint_and_cover_the_epoch():
    ranks = [_loader(crop_padding=0, hflip=False, rank=r, world_size=2, batch_size=5) for r in range(2)]
    seen = [torch.cat([x.flatten(1) for x, _ in _epoch(r, 0)]) for r in ranks]
    rows = [{tuple(v.tolist()) for v in s} for s in seen]
    assert not rows[0] & rows[1] and len(rows[0]) == len(rows[1]) == 25


def test_test_loader_is_ordered_complete_and_unaugmented():
    loader = _loader(train=False, batch_size=16)
    batches = _epoch(loader, 0)
    assert len(batches) == 4 and torch.equal(torch.cat([y for _, y in batches]), torch.arange(50) % 5)
    assert torch.allclose(batches[0][0], loader.images[:16].float() / 255)  # mean 0, std 1, no crop/flip
