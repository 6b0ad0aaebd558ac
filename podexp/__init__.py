"""podexp: POD Loss and the losses it is compared with, behind one Hydra trainer.

Data flow (one sub-package per stage):
config (configs/) -> data (podexp.data) -> backbone + latent head (podexp.models)
-> loss owning its classifier (podexp.losses, podexp.pedcc) -> trainer (podexp.train)
-> results -> tables (podexp.aggregate, podexp.analysis).
"""

__version__ = "0.1.0"
