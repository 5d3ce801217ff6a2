"""Test-wide settings: never reach the network, never write to the user's cache."""
import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(autouse=True, scope="session")
def _zoo_home(tmp_path_factory):
    """Point $ZOO_HOME (generated datasets, caches) at a per-session temporary folder."""
    if "ZOO_HOME" not in os.environ or not os.environ.get("ZOO_TEST_KEEP_HOME"):
        os.environ["ZOO_HOME"] = str(tmp_path_factory.mktemp("zoo_home"))
    yield
