"""A real headless Chromium (Debian's chromium + chromedriver) driven by selenium, offline."""
from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from collections.abc import Iterator

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def chromium_paths() -> tuple[str | None, str | None]:
    return (shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver"))


@contextmanager
def headless_chromium(width: int = 1300, height: int = 900) -> Iterator[object]:
    """A selenium driver for a fresh profile; the browser and driver are the system's (no download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    profile = tempfile.mkdtemp(prefix="refcheck-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS + [f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(url: str, path: str, width: int = 1300) -> None:
    """The whole page as a PNG (the window grows to the page's height)."""
    with headless_chromium(width) as driver:
        driver.get(url)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(int(height) + 100, 16000))
        driver.save_screenshot(path)


if __name__ == "__main__":
    import sys

    screenshot(sys.argv[1], sys.argv[2])
