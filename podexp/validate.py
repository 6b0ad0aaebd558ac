"""Check a composed config before anything is built or read, and report every problem at once.

Every group is checked against what declares it, by the same code: ``dataset``, ``backbone``, ``loss``,
``optim``, ``sched`` and ``logger`` against their registry's entry (``Registry.problems``: the name is
registered, every key is one of its options, each value has the annotated type and range),
``trainer`` against ``TrainerSettings`` and the top-level keys against ``RunSettings``. A key left out
takes its config file's value, as ``Registry.build`` does. Then the rules that tie fields together:
the exact simplex PEDCC needs K <= d + 1 (``pedcc.simplex_problem``), PEDCC centres in d = 1 separate
at most 2 classes (``pedcc.crowding_problem``), a dataset's mean/std per channel
and its folder (``data.registry.field_problems``), a validation ``optimized_metric`` without a
validation split (``settings.optimized_metric_problem``) and a ``resume=PATH`` checkpoint
(``settings.resume_problem``). A rule that needs the data read (a batch larger than the training
split) is checked where the data is read (``data.loaders.check_batch_fits``).
"""

from __future__ import annotations

from podexp.data import DATASETS
from podexp.data.registry import dataset_options, field_problems
from podexp.losses import LOSSES
from podexp.models import BACKBONES
from podexp.optim import OPTIMIZERS, SCHEDULES
from podexp.pedcc import crowding_problem, simplex_problem
from podexp.registry import Registry, options_of, problems_with, raise_problems
from podexp.settings import LOGGERS, RunSettings, TrainerSettings, optimized_metric_problem, resume_problem

REGISTRIES: dict[str, Registry] = {
    "dataset": DATASETS,
    "backbone": BACKBONES,
    "loss": LOSSES,
    "optim": OPTIMIZERS,
    "sched": SCHEDULES,
    "logger": LOGGERS,
}


def group_values(cfg, group: str) -> tuple[list[str], dict | None]:
    """(problems, option values with the config file's defaults) of the registry group ``group``; the
    values are None when the name is unknown."""
    section, registry = cfg[group], REGISTRIES[group]
    name = section.get("name")
    if name not in registry:
        return [registry.unknown(name)], None
    given = dataset_options(section) if group == "dataset" else {k: section[k] for k in section if k != "name"}
    values = {**registry.defaults(name), **given}
    return registry.problems(name, values, prefix=f"{group}."), values


def cross_field_problems(cfg, values: dict[str, dict | None], clean: set[str]) -> list[str | None]:
    """The rules between fields, asked only of groups whose fields are valid one by one (``clean``)."""
    problems = []
    dataset, loss = values["dataset"], values["loss"]
    if "dataset" in clean:
        problems += field_problems(cfg.dataset.name, dataset)
        if "loss" in clean and loss.get("pedcc_method") == "simplex":
            problems.append(simplex_problem(dataset["num_classes"], dataset["latent_dim"]))
        if "loss" in clean and "allow_crowded_pedcc" in loss:  # a loss with PEDCC centres
            problems.append(
                crowding_problem(dataset["num_classes"], dataset["latent_dim"], loss["allow_crowded_pedcc"])
            )
        problems.append(optimized_metric_problem(cfg.get("optimized_metric"), dataset.get("val_fraction", 0)))
    resume = cfg.get("resume")
    if resume is None or isinstance(resume, str):
        problems.append(resume_problem(resume))
    return problems


def validate_config(cfg) -> None:
    """Raise one ``ConfigError`` listing every problem in ``cfg`` (nothing is read or built)."""
    problems, values, clean = [], {}, set()
    for group in REGISTRIES:
        found, values[group] = group_values(cfg, group)
        problems += found
        if not found:
            clean.add(group)
    problems += TrainerSettings.problems(TrainerSettings.values(cfg.trainer))
    top_level = {k: cfg[k] for k in cfg if k not in REGISTRIES and k != "trainer"}
    problems += problems_with(options_of(RunSettings), top_level, "", "the run config")
    problems += cross_field_problems(cfg, values, clean)
    found = [p for p in problems if p]
    raise_problems(f"The configuration has {len(found)} problem(s):", found)
