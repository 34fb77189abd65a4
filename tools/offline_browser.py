"""A headless Chromium that reaches nothing but ``file:`` and ``data:``: for the review page.

Debian's ``chromium`` (``apt-get install chromium``; ``wb_scripts/test`` installs it when
it runs as root) driven by Playwright's Python package, never a browser Playwright downloads.
Every request to anything else is aborted and recorded, so a page that would need the network
shows it. Used by ``tests/footprints/test_review.py`` and ``tools/conflation_measure.py``
(the docs' screenshot).
"""

import importlib.util
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # root in a container has no user namespace to sandbox with
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_SCHEMES = ("file:", "data:", "blob:")


def chromium_missing() -> str | None:
    """Why the browser cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (requirements.txt)"
    if not shutil.which(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@dataclass
class OfflinePage:
    """A Playwright page, the requests it was refused and the errors its scripts raised."""

    page: Any
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def offline_page(width: int = 1000, height: int = 700) -> Iterator[OfflinePage]:
    """A fresh page in a fresh headless Chromium, cut off from the network."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            offline = OfflinePage(page)

            def route(request_route: Any) -> None:
                url = request_route.request.url
                if url.startswith(LOCAL_SCHEMES):
                    request_route.continue_()
                else:
                    offline.blocked.append(url)
                    request_route.abort()

            context.route("**/*", route)
            page.on("pageerror", lambda exc: offline.errors.append(str(exc)))
            page.on(
                "console", lambda m: offline.errors.append(m.text) if m.type == "error" else None
            )
            yield offline
        finally:
            browser.close()
