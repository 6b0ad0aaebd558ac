"""One-off re-arrangements of downloaded datasets (each idempotent: a second run changes nothing).

``tiny_imagenet``: val/images + val_annotations.txt -> val/<wnid>/images/.
``facescrub``: per-identity source folders -> the 100-identity 64x64 train/test ImageFolder tree.
``imagenet_val``: the flat ILSVRC-2012 val folder -> val/<wnid>/.
The scripts in ``scripts/prepare_*.py`` call these.
"""
