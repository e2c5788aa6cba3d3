"""Headless Chromium (Debian's `chromium`, which .ci/run installs) for tests that check a page as a
user sees it: its DOM after scripts ran, and a screenshot that must not be blank."""

import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed here (apt-get install -y "
                                                             "chromium; .ci/run installs it, so CI runs this test)")


def chromium(url, profile, *args, wait_ms=0):
    """Run Chromium on `url` with a throwaway profile in `profile`; `wait_ms` of virtual time lets a
    single-page app fetch and render. Returns stdout (the DOM with --dump-dom)."""
    budget = [f"--virtual-time-budget={wait_ms}"] if wait_ms else []
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *budget, *args, url],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(url, png, profile, size="1600,1200", wait_ms=0):
    """A PNG of the page; returns how many distinct colours it has (a blank page has one)."""
    chromium(url, profile, f"--screenshot={png}", f"--window-size={size}", wait_ms=wait_ms)
    pixels = matplotlib.image.imread(png)[..., :3].reshape(-1, 3)
    return len(np.unique((pixels * 255).astype(np.uint8), axis=0))
