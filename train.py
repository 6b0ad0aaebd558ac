"""Train one configuration (or a sweep with -m). Example: python train.py loss=pod dataset=cifar100"""
import hydra

from podexp.train.run import main as run


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg):
    return run(cfg)


if __name__ == "__main__":
    main()
