"""``python -m podexp.train ARGS`` (what ``train.py ARGS`` runs): train one configuration, or a sweep
with ``-m``. Example: ``python -m podexp.train loss=pod dataset=cifar100``."""

import hydra

from podexp.defaults import CONFIG_DIR
from podexp.train.run import main as run


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def main(cfg):
    return run(cfg)


if __name__ == "__main__":
    main()
