"""The config keys that do not change what a run computes, written once.

Three places read them: the resume check (``podexp.train.resume``: a checkpoint's config may differ in
them), a sweep's job folder names (``configs/hydra/default.yaml`` asks the resolver registered here),
and the sweep summary (``podexp.analysis.sweeps``: jobs that differ only in them, or in the seed, are
one configuration). So re-running a sweep with ``resume_allow_changes=true`` or ``logger=wandb`` finds
its old job folders and continues there, and neither shows up as a table row.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from podexp.defaults import CONFIG_DIR

# A key covers the keys below it (``logger`` covers ``logger.mode``).
RESULT_NEUTRAL_KEYS = (
    "resume",
    "resume_allow_changes",  # how a run starts, not what it computes
    "name",  # the output folder and the W&B group
    "data_root",
    "dataset.root",  # where the same data lie (the dataset is named by dataset.name)
    "dataset.system_root",  # a distribution's copy of the same data
    "trainer.progress",  # progress bars
    "trainer.compile",  # the same numbers up to float rounding
    "trainer.preempt_check_every",  # how often torchrun ranks agree on a preemption signal
    "logger",  # where metrics are sent besides the run folder
    "hydra/launcher",  # where the jobs run (in this process, submitit, SLURM)
)

# The experiment is left out of job folder names as well: its name is already the sweep folder's
# (outputs/multirun/<name>/<time>). It does change the result, so the summary keeps it.
FOLDER_EXCLUDED_KEYS = RESULT_NEUTRAL_KEYS + ("experiment",)

RESOLVER = "podexp.folder_excluded_keys"


def is_result_neutral(key: str) -> bool:
    """Whether the config key ``key`` (``a.b.c``, or a group ``hydra/launcher``) is result-neutral."""
    return any(key == k or key.startswith(k + ".") for k in RESULT_NEUTRAL_KEYS)


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


def register_config_resolver() -> None:
    """Make ``${podexp.folder_excluded_keys:}`` resolvable; needed before Hydra composes ``configs/``."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, folder_excluded_keys)
