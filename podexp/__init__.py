"""podexp: POD Loss and the losses it is compared with, behind one Hydra trainer.

Data flow (one sub-package per stage):
config (configs/) -> data (podexp.data) -> backbone + latent head (podexp.models)
-> loss owning its classifier (podexp.losses, podexp.pedcc) -> trainer (podexp.train)
-> results -> tables (podexp.aggregate, podexp.analysis).
"""

from podexp.keys import register_config_resolver

__version__ = "0.1.0"

register_config_resolver()  # configs/hydra/default.yaml reads the result-neutral keys from podexp.keys
