"""The config keys that do not change what a run computes, and those a checkpoint fixes, written once.

Three places read them: the resume check (``podexp.train.resume``: a checkpoint's config may differ in
them), a sweep's job folder names (``configs/hydra/default.yaml`` asks the resolvers registered here,
which also keep the names short: ``job_folder_name``),
and the sweep summary (``podexp.analysis.sweeps``: jobs that differ only in them, or in the seed, are
one configuration). So re-running a sweep with ``resume_allow_changes=true`` or ``logger=wandb`` finds
its old job folders and continues there, and neither shows up as a table row.
"""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf

from podexp.defaults import CONFIG_DIR

# A key covers the keys below it (``logger`` covers ``logger.mode``).
RESULT_NEUTRAL_KEYS = (
    "resume",
    "resume_allow_changes",  # how a run starts, not what it computes
    "optimized_metric",  # which of its numbers a sweeper reads
    "allow_failures",  # a sweep's exit code
    "name",  # the output folder and the W&B group
    "data_root",
    "dataset.root",  # where the same data lie (the dataset is named by dataset.name)
    "dataset.system_root",  # a distribution's copy of the same data
    "trainer.progress",  # progress bars
    "trainer.compile",  # the same numbers up to float rounding
    "trainer.cuda_graph",  # the same step replayed as one CUDA graph: the same numbers up to float rounding
    "trainer.preempt_check_every",  # how often torchrun ranks agree on a preemption signal
    "trainer.keep_checkpoints",  # which checkpoint files a finished run keeps
    "logger",  # where metrics are sent besides the run folder
    "hydra/launcher",  # where the jobs run (in this process, submitit, SLURM)
)

# What a checkpoint decides, so that a resumed run cannot take a change to it even with
# resume_allow_changes=true: the RNG states (seed), the tensors' shapes and meaning (backbone, dataset, the
# loss's kind, bias and PEDCC, NaC/POD's v), the optimiser's kind (its state dict). Every other change (optim.lr,
# momentum, weight decay, the schedule, trainer.epochs, the loss's weights) is applied after loading.
FIXED_BY_CHECKPOINT = (
    "seed",
    "backbone",
    "dataset",
    "loss.name",
    "loss.bias",
    "loss.pedcc_method",
    "loss.pedcc_seed",
    "loss.pedcc_path",
    "loss.v0",
    "optim.name",
)
# ... except these keys below them, which only change how the data are fed
CHANGEABLE_ON_RESUME = ("dataset.augment", "dataset.test_batch_size")

# The experiment is left out of job folder names as well: its name is already the sweep folder's
# (outputs/multirun/<name>/<time>). It does change the result, so the summary keeps it.
FOLDER_EXCLUDED_KEYS = RESULT_NEUTRAL_KEYS + ("experiment",)

RESOLVER = "podexp.folder_excluded_keys"
FOLDER_RESOLVER = "podexp.job_folder"

# A job folder named by its overrides stays under this many bytes (file systems allow 255); a longer name,
# or one holding '/', becomes a readable prefix and a hash of the whole (job_folder_name).
MAX_FOLDER_NAME = 200


# Besides the result-neutral keys, the seed is folded: the jobs of one configuration are its seeds.
FOLDED_KEYS = ("seed",)


def override_key(line: str) -> str:
    """The key of a Hydra override line (``+label.backbone=x`` -> ``label.backbone``)."""
    return line.split("=", 1)[0].lstrip("+~")


def configuration_name(override_lines) -> str:
    """The configuration a job belongs to (a summary row, a W&B group): its command-line overrides minus
    the seed and the result-neutral keys, sorted; ``(defaults)`` when none is left."""
    kept = [
        line
        for line in override_lines
        if override_key(line) not in FOLDED_KEYS and not is_result_neutral(override_key(line))
    ]
    return ",".join(sorted(kept)) or "(defaults)"


def is_result_neutral(key: str) -> bool:
    """Whether the config key ``key`` (``a.b.c``, or a group ``hydra/launcher``) is result-neutral."""
    return any(key == k or key.startswith(k + ".") for k in RESULT_NEUTRAL_KEYS)


def is_fixed_by_checkpoint(key: str) -> bool:
    """Whether a resumed run cannot apply a change to ``key`` (see ``FIXED_BY_CHECKPOINT``)."""
    covered = lambda keys: any(key == k or key.startswith(k + ".") for k in keys)  # noqa: E731
    return covered(FIXED_BY_CHECKPOINT) and not covered(CHANGEABLE_ON_RESUME)


def folder_excluded_keys() -> list[str]:
    """``FOLDER_EXCLUDED_KEYS`` as Hydra's ``override_dirname.exclude_keys`` wants them: Hydra drops an
    override only on an exact key match, so the options of a result-neutral config group are listed too
    (``logger.mode``)."""
    keys = list(FOLDER_EXCLUDED_KEYS)
    for group in RESULT_NEUTRAL_KEYS:
        if "/" not in group and (CONFIG_DIR / group).is_dir():
            options = {
                k
                for path in sorted((CONFIG_DIR / group).glob("*.yaml"))
                for k in OmegaConf.load(path)
                if k != "defaults"
            }
            keys += [f"{group}.{option}" for option in sorted(options)]
    return keys


def job_folder_name(override_dirname: str, limit: int = MAX_FOLDER_NAME) -> str:
    """A sweep job's folder name from Hydra's ``override_dirname``: the name itself when it fits in ``limit``
    bytes and holds no '/'; else its first ``limit // 2`` characters ('/' -> '_') and a 10-digit hash of the
    whole, so that distinct jobs keep distinct folders and a re-run of the sweep finds the same ones."""
    name = str(override_dirname)
    if len(name.encode()) <= limit and "/" not in name:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name[: limit // 2].replace('/', '_').rstrip(',')}-{digest}"


def register_config_resolver() -> None:
    """Make ``${podexp.folder_excluded_keys:}`` and ``${podexp.job_folder:NAME}`` resolvable; needed before
    Hydra composes ``configs/``."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, folder_excluded_keys)
    if not OmegaConf.has_resolver(FOLDER_RESOLVER):
        OmegaConf.register_new_resolver(FOLDER_RESOLVER, job_folder_name)
