"""Debian's Chromium and chromedriver for the dashboard's browser tests, and a headless driver.

`ensure_chromium()` installs the `chromium` and `chromium-driver` packages with apt-get when
they are missing (once: pytest workers of one run, or two runs at once, wait on one lock file
and re-check before installing), and says why when it cannot. No browser build is ever
downloaded: only Debian's packages, through apt.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("chromium", "chromium-driver")
LOCK_FILE = Path(tempfile.gettempdir()) / "movie-lake-chromium-apt.lock"
# Flags that keep a headless Chromium quiet and local: no sandbox (tests run as root), no GPU,
# no network of its own (updates, sync, QUIC), no first-run dialogs.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


@dataclass(frozen=True)
class Chromium:
    browser: Path
    driver: Path


def _find() -> Chromium | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return Chromium(Path(browser), Path(driver))
    return None


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", "-o", "DPkg::Lock::Timeout=300", *args],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def ensure_chromium() -> Chromium | str:
    """Chromium and chromedriver, installed from Debian when missing; else why they cannot be."""
    found = _find()
    if found:
        return found
    if shutil.which("apt-get") is None:
        return "Chromium is not installed and there is no apt-get to install it"
    if os.geteuid() != 0:
        return (
            "Chromium is not installed and installing it needs root: "
            f"run `apt-get install -y {' '.join(PACKAGES)}`"
        )
    with LOCK_FILE.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be installing: wait, re-check
        found = _find()
        if found:
            return found
        result = _apt_get("install", "-y", "--no-install-recommends", *PACKAGES)
        if result.returncode != 0:  # stale or missing package lists: refresh them once
            _apt_get("update")
            result = _apt_get("install", "-y", "--no-install-recommends", *PACKAGES)
        found = _find()
        if found:
            return found
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        return (
            f"Chromium could not be installed (`apt-get install {' '.join(PACKAGES)}` exited "
            f"{result.returncode}): {' / '.join(tail)}"
        )


def start_driver(chromium: Chromium, profile_dir: Path, *, width: int = 1400, height: int = 1000):
    """A headless Chrome WebDriver over Debian's Chromium, with a fresh profile folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium.browser)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={width},{height}")
    service = Service(executable_path=str(chromium.driver))
    return webdriver.Chrome(options=options, service=service)
