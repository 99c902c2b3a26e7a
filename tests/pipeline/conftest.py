"""What the pipeline-level browser tests share: the chromium that `make browser` installs, and one browser."""

from __future__ import annotations

import shutil

import pytest


def chromium() -> str:
    """Debian's chromium (a missing browser fails the test, it never skips it)."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium not found: `make browser` installs it (apt-get install chromium)")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return chromium()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield instance
        instance.close()
