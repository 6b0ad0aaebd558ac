"""The trainer: the loop, checkpoints, loggers and the Hydra entry point's body (``run``)."""
