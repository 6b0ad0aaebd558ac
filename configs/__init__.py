"""The Hydra config tree, importable so that Hydra finds it as ``pkg://podexp.configs`` in a clone and in a wheel."""
