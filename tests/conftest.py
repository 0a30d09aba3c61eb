"""Suite-wide setup: the suite never writes into the user's home. The parser table
cache (``CONVERGE_CACHE_DIR``) lives in a temporary directory for the session, which
every in-process command and every ``converge`` subprocess the tests start inherit."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_CACHE = "CONVERGE_CACHE_DIR"


def pytest_configure(config: pytest.Config) -> None:
    if _CACHE not in os.environ:
        path = tempfile.mkdtemp(prefix="converge-test-cache-")
        os.environ[_CACHE] = path
        config.stash[_cache_key] = path


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.stash.get(_cache_key, None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop(_CACHE, None)


_cache_key = pytest.StashKey[str]()
