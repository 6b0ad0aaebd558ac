"""Latent features of a finished run: rebuild the model from ``config.yaml``, load ``model.pt`` (or ``last.pt``),
and push the train and test splits through it (no augmentation, eval mode)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf

from podexp.compose import build_components, load_weights, read_weights, run_weights_file
from podexp.data.loaders import TensorLoader
from podexp.errors import PodexpError
from podexp.pedcc import make_pedcc


@dataclass
class RunFeatures:
    train_z: torch.Tensor  # (N_train, d) latent features z (FC1 output)
    train_y: torch.Tensor
    test_z: torch.Tensor
    test_y: torch.Tensor
    test_pred: torch.Tensor  # the loss's own margin-free prediction on the test split
    centres: torch.Tensor  # (K, d) the run's PEDCC (see reference_centres)


def unaugmented(loader):
    """The loader's split in a fixed order with no augmentation (a test-mode twin of ``loader``)."""
    if not isinstance(loader, TensorLoader):
        raise PodexpError(
            f"Feature extraction reads in-memory datasets (CIFAR, Tiny ImageNet, FaceScrub, "
            f"MNIST, digits, synthetic); this run's training loader is a "
            f"{loader.__class__.__name__}. Tables 1, 5, 9 and Fig. 6 use only in-memory data."
        )
    if not loader.train:
        return loader
    return TensorLoader(
        loader.images, loader.labels, 512, train=False, mean=loader.mean, std=loader.std, device=loader.device
    )


@torch.no_grad()
def encode(model, batches) -> tuple[torch.Tensor, torch.Tensor]:
    zs, ys = [], []
    for images, labels in batches:
        zs.append(model(images).float().cpu())
        ys.append(labels.cpu())
    return torch.cat(zs), torch.cat(ys)


def load_run(run_dir: Path, device: str | torch.device = "cpu", cfg=None):
    """(cfg, loaders, model, loss) of a trained run, with the weights of its ``model.pt`` (else ``last.pt``);
    ``cfg`` (default: the run's ``config.yaml``) says which data to load."""
    run_dir = Path(run_dir)
    config = run_dir / "config.yaml"
    if cfg is None and not config.exists():
        raise PodexpError(
            f"{run_dir} is not a run folder: it has no config.yaml (a run folder holds config.yaml and "
            f"model.pt or last.pt). Give the folder a podexp run was trained in (outputs/runs/<name>/<time> "
            f"or a sweep's job folder)."
        )
    weights = run_weights_file(run_dir)
    cfg = OmegaConf.load(config) if cfg is None else cfg
    state = read_weights(weights)
    device = torch.device(device)
    loaders, model, loss = build_components(cfg, device)
    load_weights(model, loss, state, weights)
    return cfg, loaders, model, loss


def reference_centres(loss) -> torch.Tensor:
    """The PEDCC a run's features are measured against: the loss's own fixed ``pedcc`` buffer (as trained
    and checkpointed), or, for a loss without one (softmax, center, the margin losses, ...), a PEDCC
    built for the run's K and d with the PEDCC losses' defaults (``make_pedcc(K, d, "auto")``, seed 0)."""
    pedcc = getattr(loss, "pedcc", None)
    if isinstance(pedcc, torch.Tensor):
        return pedcc.detach().float().cpu()
    return make_pedcc(loss.num_classes, loss.latent_dim, "auto")


def extract_features(run_dir: Path, device: str | torch.device = "cpu") -> RunFeatures:
    """Latent z and labels of the train and test splits of the run in ``run_dir``, and its PEDCC."""
    _, loaders, model, loss = load_run(run_dir, device)
    train_z, train_y = encode(model, unaugmented(loaders.train))
    test_z, test_y = encode(model, loaders.test)
    test_pred = loss.predict(test_z.to(device)).argmax(1).cpu()
    return RunFeatures(train_z, train_y, test_z, test_y, test_pred, reference_centres(loss))
