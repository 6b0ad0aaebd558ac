"""Evaluate a trained run's network on a split of its data (or of another dataset with the same classes).

    python -m podexp.evaluate RUN_DIR                                # the test split of the run's dataset
    python -m podexp.evaluate RUN_DIR split=train --save-features    # + z, labels, predictions (.npz)
    python -m podexp.evaluate RUN_DIR data_root=/mnt/data dataset.batch_size=256 --device cuda

RUN_DIR is a run folder (config.yaml + model.pt or last.pt), from this machine or another: the weights
are read onto the CPU whatever device wrote them, and the key prefixes of DDP / torch.compile are removed.
``key=value`` arguments override the run's config (``dataset=NAME`` swaps in configs/dataset/NAME.yaml,
keeping the trained latent_dim); ``split`` is test (default), val (the run's validation hold-out) or train
(no augmentation). The prediction is
the loss's own margin-free ``predict(z).argmax`` (docs/method.md §2).

Writes into ``RUN_DIR/eval/<dataset>-<split>/`` (or ``--out``): ``metrics.json`` (accuracy, latent norms,
per class), ``per_class.csv``, ``confusion.csv`` (rows: true class, columns: predicted), ``confusion.png``
when matplotlib is installed, and with ``--save-features`` ``features.npz`` (z, labels, predictions).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from podexp.analysis.features import encode, load_run, unaugmented
from podexp.defaults import CONFIG_DIR, group_defaults
from podexp.errors import ConfigError, PodexpError
from podexp.io import atomic_write, atomic_write_json, atomic_write_text
from podexp.validate import validate_config

# The splits a run can be evaluated on: split name -> its unaugmented loader ("val": the hold-out of
# dataset.val_fraction, None for a run trained without one).
SPLITS = {
    "test": lambda loaders: loaders.test,
    "val": lambda loaders: loaders.val,
    "train": lambda loaders: unaugmented(loaders.train),
}


def run_config(run_dir: Path, overrides: list[str]):
    """The run's ``config.yaml`` with the ``key=value`` overrides applied (``GROUP=NAME`` for a config group
    replaces that section by configs/GROUP/NAME.yaml; for ``dataset``, the trained latent_dim is kept)."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise PodexpError(
            f"{run_dir} is not a run folder: it has no config.yaml (a run folder holds config.yaml and "
            f"model.pt or last.pt). Give the folder a podexp run was trained in (outputs/runs/<name>/<time> or "
            f"a sweep's job folder)."
        )
    cfg = OmegaConf.load(config)
    dotted = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"'{override}': overrides are key=value (e.g. dataset.root=/data/cifar10 or split=train)."
            )
        if "." not in key and (CONFIG_DIR / key).is_dir() and key in cfg:
            if not (CONFIG_DIR / key / f"{value}.yaml").is_file():
                options = ", ".join(sorted(p.stem for p in (CONFIG_DIR / key).glob("*.yaml")))
                raise ConfigError(f"{key}={value}: no such option of the '{key}' config group. Options: {options}.")
            trained = cfg[key]
            cfg[key] = {"name": value, **group_defaults(key, value)}
            if key == "dataset":
                cfg.dataset.latent_dim = trained.latent_dim  # the network's architecture, as trained
        else:
            dotted.append(override)
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(dotted))


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) counts: row = true class, column = predicted class."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def summarise(z: torch.Tensor, labels: torch.Tensor, predictions: torch.Tensor, class_names: list[str]) -> dict:
    """Accuracy (%), the mean and std of the latent norm ||z||, and both per class (docs/method.md §3:
    the PEDCC losses push every class's norm to the same v)."""
    norms = z.norm(dim=1).double()
    hits = (predictions == labels).double()
    per_class = []
    for k, name in enumerate(class_names):
        mask = labels == k
        n = int(mask.sum())
        per_class.append(
            {
                "class": k,
                "name": name,
                "n": n,
                "accuracy": 100.0 * hits[mask].mean().item() if n else float("nan"),
                "latent_norm_mean": norms[mask].mean().item() if n else float("nan"),
            }
        )
    return {
        "n": len(labels),
        "accuracy": 100.0 * hits.mean().item(),
        "latent_norm_mean": norms.mean().item(),
        "latent_norm_std": norms.std().item() if len(norms) > 1 else 0.0,
        "per_class": per_class,
    }


def csv_text(header: list, rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def plot_confusion(matrix: torch.Tensor, class_names: list[str], title: str, path: Path) -> bool:
    """Save the confusion matrix, each row normalised to the class's size, as a PNG; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rates = (matrix.double() / matrix.sum(1, keepdim=True).clamp(min=1)).numpy()
    k = len(class_names)
    size = min(4 + 0.3 * k, 24)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        ax.set_xticks(range(k), class_names, rotation=90)
        ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120))
    plt.close(fig)
    return True


def write_outputs(out: Path, summary: dict, matrix: torch.Tensor, class_names: list[str], title: str) -> list[str]:
    """metrics.json, per_class.csv, confusion.csv and confusion.png in ``out``; returns what was left out."""
    atomic_write_json(summary, out / "metrics.json")
    columns = ["class", "name", "n", "accuracy", "latent_norm_mean"]
    atomic_write_text(
        csv_text(columns, [[row[c] for c in columns] for row in summary["per_class"]]), out / "per_class.csv"
    )
    rows = [[name, *matrix[i].tolist()] for i, name in enumerate(class_names)]
    atomic_write_text(csv_text(["true \\ predicted", *class_names], rows), out / "confusion.csv")
    if plot_confusion(matrix, class_names, title, out / "confusion.png"):
        return []
    return ["confusion.png (matplotlib is not installed; confusion.csv holds the matrix)"]


def evaluate(run_dir: Path, overrides: list[str], out: Path | None, save_features: bool, device: str) -> dict:
    """Evaluate the run in ``run_dir`` and write the files the module docstring lists; returns the summary."""
    split_args = [o for o in overrides if o.startswith("split=")]
    split = split_args[-1].partition("=")[2] if split_args else "test"
    if split not in SPLITS:
        raise ConfigError(f"split={split}: use {', '.join(list(SPLITS)[:-1])} or {list(SPLITS)[-1]}.")
    cfg = run_config(run_dir, [o for o in overrides if not o.startswith("split=")])
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is visible here. Evaluate with --device cpu.")
    cfg.trainer.device, cfg.resume = device, None  # how the run was started does not matter here
    validate_config(cfg)
    _, loaders, model, loss = load_run(run_dir, torch.device(device), cfg)
    loader = SPLITS[split](loaders)
    if loader is None:
        raise ConfigError(
            f"split={split}: {run_dir} was trained without a validation split (dataset.val_fraction=0), so "
            f"it has none to evaluate; use split=test, or train with +dataset.val_fraction=0.1."
        )
    z, labels = encode(model, loader)
    predictions = loss.predict(z.to(device)).argmax(1).cpu()
    summary = {
        "run": str(run_dir),
        "dataset": cfg.dataset.name,
        "split": split,
        "loss": cfg.loss.name,
        **summarise(z, labels, predictions, loaders.class_names),
    }
    out = out or run_dir / "eval" / f"{cfg.dataset.name}-{split}"
    matrix = confusion_matrix(labels, predictions, loaders.num_classes)
    title = f"{cfg.loss.name} on {cfg.dataset.name} ({split}): {summary['accuracy']:.2f}%"
    left_out = write_outputs(out, summary, matrix, loaders.class_names, title)
    if save_features:
        arrays = {"z": z.numpy(), "labels": labels.numpy(), "predictions": predictions.numpy()}
        atomic_write(out / "features.npz", lambda handle: np.savez(handle, **arrays))
    summary["out"], summary["left_out"] = str(out), left_out
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument("run_dir", type=Path, help="a run folder: config.yaml + model.pt or last.pt")
    parser.add_argument("overrides", nargs="*", help="split=test|val|train, dataset=NAME, any config key=value")
    parser.add_argument("--save-features", action="store_true", help="also write features.npz (z, labels, predictions)")
    parser.add_argument("--out", type=Path, help="output folder (default RUN_DIR/eval/<dataset>-<split>)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    args = parser.parse_args(argv)
    try:
        summary = evaluate(args.run_dir, args.overrides, args.out, args.save_features, args.device)
    except PodexpError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except PermissionError as err:  # e.g. a run folder copied read-only from another machine
        print(
            f"error: cannot write {err.filename} ({err.strerror}). Pass --out DIR, a folder you can write.",
            file=sys.stderr,
        )
        return 2
    print(
        f"{summary['loss']} on {summary['dataset']} ({summary['split']}, {summary['n']} images): accuracy "
        f"{summary['accuracy']:.2f}%, latent norm {summary['latent_norm_mean']:.3f} ± {summary['latent_norm_std']:.3f}"
    )
    for item in summary["left_out"]:
        print(f"not written: {item}")
    print(f"(written to {summary['out']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
