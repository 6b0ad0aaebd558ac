"""Session-wide test settings. Helpers to compose and run configs live in tests/helpers.py."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """PEDCC cache and W&B files of the tests go to a temporary folder, never the user's home."""
    os.environ["PODEXP_CACHE"] = str(tmp_path_factory.mktemp("podexp_cache"))
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ["WANDB_SILENT"] = "true"
