"""One list of result-neutral keys: the resume hash, the job folder names and the summary rows agree."""

from hydra import compose, initialize_config_dir

from podexp.defaults import CONFIG_DIR
from podexp.keys import MAX_FOLDER_NAME, RESULT_NEUTRAL_KEYS, is_result_neutral, job_folder_name
from podexp.train.resume import config_hash

NEUTRAL = (
    "resume=null",
    "resume_allow_changes=true",
    "name=other",
    "data_root=/elsewhere",
    "trainer.progress=false",
    "trainer.compile=true",
    "logger=wandb",
    "logger.mode=offline",
)


def job_folder(*overrides: str) -> str:
    """The folder name Hydra gives a sweep job with these overrides."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides), return_hydra_config=True)
    return cfg.hydra.job.override_dirname


def test_neutral_overrides_stay_out_of_job_folder_names():
    assert job_folder("loss=pod", "seed=1", *NEUTRAL) == "loss=pod,seed=1"
    assert job_folder("experiment=demo", "loss=pod", "optim.lr=0.05") == "loss=pod,optim.lr=0.05"


def test_every_neutral_key_is_known_to_hydras_folder_names():
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True)
    excluded = list(cfg.hydra.job.config.override_dirname.exclude_keys)
    assert set(RESULT_NEUTRAL_KEYS) <= set(excluded) and "seed" not in excluded


def test_resume_hash_ignores_exactly_the_neutral_keys():
    base = {
        "seed": 0,
        "name": "a",
        "data_root": "data",
        "resume": "auto",
        "dataset": {"name": "cifar10", "root": "data/cifar10"},
        "trainer": {"epochs": 2, "progress": "auto", "compile": False},
        "logger": {"name": "csv"},
        "optim": {"lr": 0.1},
    }
    moved = {
        **base,
        "name": "b",
        "data_root": "/ssd",
        "resume": None,
        "dataset": {"name": "cifar10", "root": "/ssd/cifar10"},
        "trainer": {"epochs": 2, "progress": False, "compile": "max-autotune"},
        "logger": {"name": "wandb", "mode": "offline"},
    }
    assert config_hash(moved) == config_hash(base)
    for changed in (
        {**base, "seed": 1},
        {**base, "optim": {"lr": 0.05}},
        {**base, "dataset": {"name": "cifar100", "root": "data/cifar10"}},
    ):
        assert config_hash(changed) != config_hash(base)


def test_a_key_covers_its_sub_keys_only():
    assert is_result_neutral("logger.mode") and is_result_neutral("hydra/launcher")
    assert not is_result_neutral("loggers") and not is_result_neutral("trainer.epochs")


def sweep_subdir(*overrides: str) -> str:
    """The job folder Hydra would create for these overrides (configs/hydra/default.yaml's subdir, resolved)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        return OmegaConf.to_container(cfg.hydra.sweep, resolve=True)["subdir"]
    finally:
        HydraConfig.instance().cfg = None  # later tests run main() outside Hydra


def test_short_job_folders_keep_their_overrides_as_names():
    assert sweep_subdir("loss=pod", "seed=1") == "loss=pod,seed=1"


def test_long_or_slashed_job_folders_get_a_readable_prefix_and_a_hash():
    many = [f"+label.key{i}=value_{i}" for i in range(15)]  # ~300 characters: more than a file name may hold
    long_name = sweep_subdir(*many)
    assert len(long_name) <= MAX_FOLDER_NAME and long_name.startswith("+label.key0=value_0,")
    assert long_name != sweep_subdir(*many[:-1], "+label.key14=other")  # the hash covers the whole name
    slashed = sweep_subdir("+dataset.class_list=/lists/birds.txt", "loss=pod")
    assert "/" not in slashed and slashed.startswith("+dataset.class_list=_lists_birds.txt,loss=pod-")
    assert job_folder_name("a=1," * 40) == job_folder_name("a=1," * 40)  # a re-run finds the same folder
