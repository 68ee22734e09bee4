"""A real headless browser for the examples' pages: Debian's chromium, driven through
Debian's chromedriver with selenium. A missing browser fails the test, never skips it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

# The closed network refuses chromium's background connections; it must make none.
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--window-size=1280,900",
)


def _tool(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        f"{' or '.join(names)} is not installed: `apt-get install chromium chromium-driver`"
    )


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A fresh headless chromium with an empty profile, quit when the block ends."""
    with tempfile.TemporaryDirectory(prefix="pyfn-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = _tool("chromium", "chromium-browser")
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        service = Service(executable_path=_tool("chromedriver"))
        driver = webdriver.Chrome(options=options, service=service)
        try:
            driver.set_page_load_timeout(60)
            yield driver
        finally:
            driver.quit()
