"""Train one configuration (or a sweep with -m). Example: python train.py loss=pod dataset=cifar100"""

from podexp.train.__main__ import main

if __name__ == "__main__":
    main()
