"""summary.html in a real headless Chromium, offline: it loads, every image decodes, failing rows
and cells are highlighted and marked, and the case figure linked from a failing row opens."""
from __future__ import annotations

from pathlib import Path

import pytest

from browser import chromium_paths, headless_chromium
from refcheck.cli import main

ROOT = Path(__file__).resolve().parents[1]
FLIPPED = str(ROOT / "tests" / "impls_diagnose" / "conv_true_convolution.py")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    browser, driver = chromium_paths()
    assert browser and driver, "install Debian's chromium and chromium-driver (.ci/run does when they are missing)"
    out = tmp_path_factory.mktemp("browser") / "reports"
    assert main(["run", "--impl", FLIPPED, "--layers", "conv2d", "--quick", "--workers", "0", "--out", str(out),
                 "--allow-frameworks"]) == 1
    return out / "summary.html"


def offline(driver) -> None:
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                                "downloadThroughput": 0, "uploadThroughput": 0})


def test_the_page_loads_offline_with_every_image_decoded_and_failures_highlighted(page, tmp_path):
    with headless_chromium() as driver:
        offline(driver)
        driver.get(page.as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])")
        assert len(images) >= 2  # the overview and the conv2d heatmap
        assert all(complete and width > 100 and height > 100 for complete, width, height, _ in images), images
        resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(name.startswith("data:") for name in resources), resources
        rows = driver.execute_script("""
            return Array.from(document.querySelectorAll('tbody tr')).map(tr => [tr.className,
                getComputedStyle(tr.cells[0]).backgroundColor, tr.cells[0].innerText]);""")
        failing = [row for row in rows if row[0] == "failing"]
        others = [row for row in rows if row[0] != "failing"]
        assert failing and others
        normal = {background for _, background, _ in others}
        assert all(background not in normal for _, background, _ in failing)
        layer_row = next(row for row in failing if "conv2d" in row[2])
        assert layer_row[2].startswith("✗")  # marked by a sign, not by colour alone
        marked = driver.execute_script("""
            return Array.from(document.querySelectorAll('td.fail')).map(td => td.innerText);""")
        assert any("4.7e+13" in text or "e+1" in text for text in marked)
        driver.set_window_size(1300, int(driver.execute_script("return document.body.scrollHeight")) + 100)
        assert driver.save_screenshot(str(tmp_path / "summary.png"))


def test_the_case_figure_linked_from_a_failing_row_opens_as_an_image(page):
    with headless_chromium() as driver:
        offline(driver)
        driver.get(page.as_uri())
        links = driver.execute_script(
            "return Array.from(document.querySelectorAll('tr.failing a')).map(a => a.href)")
        assert links
        driver.get(links[0])
        width = driver.execute_script("const i = document.images[0]; return i && i.complete ? i.naturalWidth : 0")
        assert width > 300
