"""Launch the runs of a paper table / figure and build it (``make table4`` … ``make fig6``).

    python scripts/reproduce.py table4                    # the paper's 120 runs, then reports/table4/
    python scripts/reproduce.py table4 -- logger=wandb    # extra overrides go to every job
    python scripts/reproduce.py table1 --from outputs/multirun/table4/<time>   # reuse runs, no training
    python scripts/reproduce.py all --smoke               # every item on tiny data (make tables-smoke)
    python scripts/reproduce.py table9 --gda-covariance shared   # Table 9 with one pooled GDA covariance

Each item names experiment configs (``configs/experiment/<name>.yaml``) whose ``hydra.sweeper.params``
pin the paper's runs. The driver passes those parameters on the command line, dropping the values
whose config file does not exist (they show as "missing" in the table, with a warning). ``--smoke``
adds ``debug=smoke`` (synthetic images with the real class count, small_cnn, one CPU epoch), keeps seed
0, stands small_cnn in for a swept or fixed backbone while keeping its paper name as the row label
(``+label.backbone=...``), and runs the sweep inside this process instead of a subprocess.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from podexp.analysis.build import add_options, options_from
from podexp.analysis.items import GROUP_KEYS, ITEMS, get_item
from podexp.analysis.report import build_item
from podexp.defaults import config_file
from podexp.errors import PodexpError

TRAIN_MODULE = "podexp.train"  # python -m podexp.train = train.py
TRAIN_COMMAND = (sys.executable, "-m", TRAIN_MODULE)


def experiment_file(name: str) -> Path:
    return config_file("experiment", name)


def sweep_params(experiment: str) -> dict[str, list[str]]:
    """{key: [values]} of the experiment's ``hydra.sweeper.params``."""
    raw = OmegaConf.load(experiment_file(experiment))
    params = OmegaConf.select(raw, "hydra.sweeper.params", default=None) or {}
    return {str(k): [v.strip() for v in str(values).split(",")] for k, values in params.items()}


def fixed_choice(experiment: str, group: str) -> str | None:
    """The ``override /<group>: X`` of the experiment's defaults list, if any."""
    raw = OmegaConf.load(experiment_file(experiment))
    for entry in raw.get("defaults", []) or []:
        if isinstance(entry, str):
            continue
        for key, value in entry.items():
            if key == f"override /{group}":
                return str(value)
    return None


def existing(key: str, values: list[str]) -> tuple[list[str], list[str]]:
    """(values whose config file exists, values whose file is missing) for a config-group key."""
    if key not in GROUP_KEYS:
        return values, []
    present = [v for v in values if config_file(key, v).exists()]
    return present, [v for v in values if v not in present]


def command_line(experiment: str, sweep_dir: Path, smoke: bool, extra: list[str]) -> list[str] | None:
    """The ``python -m podexp.train -m`` command of one experiment, or None when a swept key has no
    usable value."""
    params = sweep_params(experiment)
    args = [f"experiment={experiment}", f"hydra.sweep.dir={sweep_dir}"]
    if smoke:
        args.append("debug=smoke")
        params["seed"] = ["0"]
        backbones = params.pop("backbone", None) or [fixed_choice(experiment, "backbone") or "resnet50"]
        args += ["backbone=small_cnn", f"+label.backbone={','.join(backbones)}"]
    for key, values in params.items():
        kept, dropped = existing(key, values)
        if dropped:
            print(
                f"warning: {experiment}: no configs/{key}/<name>.yaml for {', '.join(dropped)}; "
                f"those cells will read 'missing'.",
                file=sys.stderr,
            )
        if not kept:
            return None
        args.append(f"{key}={','.join(kept)}")
    return [*TRAIN_COMMAND, "-m", *args, *extra]


def run_in_process(args: list[str]) -> int:
    """``python -m podexp.train ARGS`` (``ARGS`` starting with Hydra's ``-m``) inside this process (the
    smoke mode: saves a Python + torch start-up per experiment); the exit status."""
    import runpy

    from hydra.core.global_hydra import GlobalHydra

    saved = sys.argv
    GlobalHydra.instance().clear()
    sys.argv = [TRAIN_MODULE, *args]
    try:
        runpy.run_module(TRAIN_MODULE, run_name="__main__")
        return 0
    except SystemExit as err:
        return err.code if isinstance(err.code, int) else 1
    except Exception as err:  # a broken experiment must not stop the other items
        print(f"warning: {err.__class__.__name__}: {err}", file=sys.stderr)
        return 1
    finally:
        sys.argv = saved
        GlobalHydra.instance().clear()


def launch(item_name: str, smoke: bool, sweep_root: Path, extra: list[str]) -> list[Path]:
    """Run every experiment of the item; the sweep folders written."""
    sweeps = []
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    for experiment in get_item(item_name).experiments:
        sweep_dir = sweep_root / experiment / ("" if smoke else stamp)
        if smoke and sweep_dir.exists():
            shutil.rmtree(sweep_dir)
        command = command_line(experiment, sweep_dir, smoke, extra)
        if command is None:
            print(f"warning: {experiment}: nothing to run (no config for any swept value).", file=sys.stderr)
            continue
        print("+ python " + " ".join(command[1:]), flush=True)
        status = run_in_process(command[len(TRAIN_COMMAND) :]) if smoke else subprocess.run(command).returncode
        if status != 0:
            print(
                f"warning: {experiment} exited with status {status}; building the table from what finished.",
                file=sys.stderr,
            )
        sweeps.append(sweep_dir)
    return sweeps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument("items", nargs="+", help=f"'all' or any of: {', '.join(ITEMS)}")
    parser.add_argument("--smoke", action="store_true", help="tiny data, small_cnn, one epoch, seed 0")
    parser.add_argument("--reports", type=Path, help="output root (default reports, or reports/smoke)")
    parser.add_argument("--sweep-root", type=Path, help="where sweeps go (default outputs/multirun, or outputs/smoke)")
    parser.add_argument(
        "--from",
        dest="sweeps",
        type=Path,
        nargs="+",
        metavar="SWEEP",
        help="build from these finished sweeps instead of launching runs",
    )
    parser.add_argument("--check", type=float, metavar="TOL", help="exit 1 if a cell is off by > TOL")
    add_options(parser)
    parser.usage = "%(prog)s ITEM [ITEM ...] [options] [-- HYDRA_OVERRIDE ...]"
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    names = list(ITEMS) if args.items == ["all"] else args.items
    reports = args.reports or Path("reports/smoke" if args.smoke else "reports")
    sweep_root = args.sweep_root or Path("outputs/smoke" if args.smoke else "outputs/multirun")
    status = 0
    try:
        for name in names:
            get_item(name)
        for name in names:
            sweeps = args.sweeps if args.sweeps else launch(name, args.smoke, sweep_root.resolve(), extra)
            status = max(
                status, build_item(name, [s for s in sweeps if s.is_dir()], reports, args.check, options_from(args))
            )
    except PodexpError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
