"""Real headless Chromium (Debian's `chromium`) with every host but loopback unreachable.

CI installs it (.ci/run); elsewhere a test that needs it is skipped, with the reason, only when it
is not installed. With CI set, a missing browser fails the test instead.
"""

import asyncio
import os
import shutil
import tempfile

import pytest

BROWSER_SECONDS = 90  # the whole browser run, virtual time included
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
OFFLINE_FLAGS = (
    # Anything not on loopback goes to a proxy on the discard port, which refuses: no network.
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
)


def chromium() -> str:
    """The browser's path; skips the test when none is installed (fails under CI)."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    reason = "no headless Chromium here: `apt-get install chromium` (.ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


async def rendered_dom(url: str, *, budget_ms: int = 15000) -> str:
    """The DOM after the page's scripts ran (virtual time), with the network blocked."""
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="tenantry-chromium-") as profile:
        proc = await asyncio.create_subprocess_exec(
            browser,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *OFFLINE_FLAGS,
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), BROWSER_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    assert proc.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout.decode()
