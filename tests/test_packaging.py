"""podexp as an installed tool: the configs inside the package, the console scripts, a user's own config
folder (``hydra.searchpath``) and loss (entry-point group ``podexp.losses``)."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from helpers import FAST, ROOT, compose

from podexp.losses import LOSSES, build
from podexp.losses.registry import load_entry_points
from podexp.train.run import train


def readme_blocks(section: str, language: str) -> list[str]:
    """The ``language`` code blocks of the README's subsection ``### section``."""
    text = (ROOT / "README.md").read_text().split(f"\n### {section}\n", 1)[1]
    text = text.split("\n## ", 1)[0].split("\n### ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


USER_LOSS = readme_blocks("Your own loss", "python")[0]  # the README's example, run as written
(ENTRY,) = [line for line in readme_blocks("Your own loss", "toml")[0].splitlines() if "=" in line]


def write_user_package(site: Path, entry: str) -> None:
    """An installed distribution in ``site`` declaring ``entry`` in the podexp.losses group, as pip
    would lay out a user's own package."""
    info = site / "my_losses-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "my_losses.py").write_text(USER_LOSS)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-losses\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[podexp.losses]\n{entry}\n")


@pytest.fixture
def registry(monkeypatch):
    """The loss registry, restored after the test."""
    monkeypatch.setattr(LOSSES, "_entries", dict(LOSSES._entries))
    monkeypatch.setattr(LOSSES, "_attributes", dict(LOSSES._attributes))
    yield LOSSES
    sys.modules.pop("my_losses", None)


def test_a_users_loss_and_config_folder_train_without_editing_podexp(tmp_path, monkeypatch, registry):
    write_user_package(tmp_path / "site", ENTRY.replace('"', ""))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    load_entry_points()
    assert "scaled_softmax" in registry and build("scaled_softmax", num_classes=3, latent_dim=4).scale == 1.0
    (tmp_path / "myconfigs" / "loss").mkdir(parents=True)
    (tmp_path / "myconfigs" / "loss" / "scaled_softmax.yaml").write_text("name: scaled_softmax\nscale: 4.0\n")
    cfg = compose(
        *FAST, "trainer.epochs=1", f"hydra.searchpath=[file://{tmp_path / 'myconfigs'}]", "loss=scaled_softmax"
    )
    result = train(cfg, tmp_path / "run")
    assert result["config"]["loss"] == {"name": "scaled_softmax", "scale": 4.0}
    assert result["final_test_acc"] is not None


def test_a_broken_loss_plugin_is_left_out_with_a_warning(tmp_path, monkeypatch, registry, caplog):
    write_user_package(tmp_path / "site", "broken = my_losses_typo:Nothing")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    load_entry_points()
    assert "broken" not in registry
    assert "loss plugin broken = my_losses_typo:Nothing" in caplog.text and "failed to import" in caplog.text


def test_the_configs_are_a_hydra_package():
    """``pkg://podexp.configs``: what a user's own primary config (or a notebook) composes podexp's from."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="podexp.configs", version_base="1.3"):
        cfg = hydra_compose(config_name="train", overrides=["debug=fast", "loss=softmax"])
    assert (cfg.dataset.name, cfg.loss.name, cfg.trainer.epochs) == ("synthetic", "softmax", 2)


def test_the_package_data_lists_every_config_file():
    """setuptools ships podexp/configs/*.yaml and podexp/configs/**/*.yaml: both patterns together cover
    every config file (``**`` matches one folder or more here)."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["podexp"]
    package = ROOT / "podexp"
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    assert {p for p in (package / "configs").rglob("*.yaml")} <= shipped


@pytest.mark.slow
def test_pip_install_then_podexp_train_from_an_empty_folder(tmp_path):
    """``pip install .`` (not editable) into a fresh virtualenv that sees this environment's packages: the
    console scripts run from a folder holding nothing of the clone."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(".git", ".venv", "outputs", "reports"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    Path(purelib, "base_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # no .pth run there
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    install = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--ignore-installed"]
    proc = subprocess.run([*install, str(source)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.rmtree(source)  # nothing of the clone is left to read from
    where = subprocess.run(
        [python, "-c", "import podexp; print(podexp.__file__)"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    installed = Path(where.stdout.strip()).parent
    assert installed.is_relative_to(venv) and (installed / "configs").is_dir()
    assert not (installed / "configs").is_symlink() and (installed / "configs" / "loss" / "pod.yaml").is_file()
    assert (installed / "configs" / "__init__.py").is_file()  # pkg://podexp.configs

    work = tmp_path / "empty"
    work.mkdir()
    proc = subprocess.run(
        [venv / "bin" / "podexp-train", "debug=fast"], capture_output=True, text=True, env=env, cwd=work
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (work / "outputs" / "runs" / "default").iterdir()
    assert json.loads((run / "result.json").read_text())["status"] == "completed"
    proc = subprocess.run([venv / "bin" / "podexp-eval", str(run)], capture_output=True, text=True, env=env, cwd=work)
    assert proc.returncode == 0 and "accuracy" in proc.stdout, proc.stderr[-3000:]
    for script in ("podexp-aggregate", "podexp-reproduce"):
        proc = subprocess.run([venv / "bin" / script, "--help"], capture_output=True, text=True, env=env, cwd=work)
        assert proc.returncode == 0 and "usage" in proc.stdout, proc.stderr[-3000:]
    proc = subprocess.run([venv / "bin" / "podexp-eval", str(work)], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr

    # the user's own loss (an installed package's entry point) and config folder, podexp/ untouched
    write_user_package(tmp_path / "site", ENTRY.replace('"', ""))
    (tmp_path / "myconfigs" / "loss").mkdir(parents=True)
    (tmp_path / "myconfigs" / "loss" / "scaled_softmax.yaml").write_text("name: scaled_softmax\nscale: 4.0\n")
    command = [
        venv / "bin" / "podexp-train",
        "debug=fast",
        "trainer.epochs=1",
        f"hydra.searchpath=[file://{tmp_path / 'myconfigs'}]",
        "loss=scaled_softmax",
        f"hydra.run.dir={work / 'mine'}",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, env={**env, "PYTHONPATH": str(tmp_path / "site")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((work / "mine" / "result.json").read_text())["config"]["loss"]["scale"] == 4.0
