"""The page of ``antispoof serve`` in a real headless Chromium (Debian's chromium and chromedriver, selenium).

Nothing is downloaded: the browser is the system's (``make browser`` installs it) and the tests skip, saying so,
only when it is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the service's extra is not installed: pip install 'antispoof[serve]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra)")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from service_process import API_KEY, ServiceProcess  # noqa: E402

pytest_plugins = ["service_process"]  # its fixtures: service_files

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="Chromium and chromedriver are not installed (Debian/Ubuntu: make browser, or "
                              "apt-get install chromium chromium-driver)"),
    pytest.mark.slow,
]


def browser(profile: Path, *flags: str):
    """Headless Chromium with a fresh profile, driven through the system's chromedriver."""
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager reach for the network
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", *flags):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def page_service(service_files, tmp_path_factory):
    server = ServiceProcess(tmp_path_factory.mktemp("page-service"), "--scorer", "lfcc-gmm", "--model",
                            str(service_files["model"]), "--max-concurrency", "2")
    yield server
    assert server.stop() == 0


def _open(driver, service) -> None:
    driver.get(service.url + "/")
    key = driver.find_element(By.ID, "api-key")
    key.send_keys(API_KEY)
    driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", key)
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#scorer option"))


def test_page_uploads_a_file_and_shows_the_service_answer(page_service, service_files, tmp_path):
    """The verdict, score, threshold and segment rows the page shows are those of the API for the same file."""
    status, expected = page_service.score(service_files["demo0"])
    assert status == 200
    driver = browser(tmp_path / "profile")
    try:
        _open(driver, page_service)
        driver.find_element(By.ID, "file").send_keys(str(service_files["demo0"]))
        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "verdict").text not in ("", "…"))
        assert driver.find_element(By.ID, "verdict").text == expected["verdict"]
        assert driver.find_element(By.ID, "score").text == f"{expected['score']:.4f}"
        assert float(driver.find_element(By.ID, "threshold").text) == expected["threshold"]
        rows = driver.find_elements(By.CSS_SELECTOR, "#segments tbody tr")
        assert len(rows) == len(expected["segments"])
        assert driver.find_element(By.ID, "error").get_attribute("hidden") is not None
        # The timeline (segments and threshold line) was drawn client-side: the canvas is no longer blank.
        drawn = driver.execute_script("const c = document.getElementById('timeline');"
                                      "return c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
                                      ".some((v, i) => i % 4 === 3 && v > 0);")
        assert drawn
        # A bad file shows the service's message instead of a verdict.
        driver.find_element(By.ID, "file").send_keys(str(service_files["text"]))
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "error").text)
        assert "text.wav" in driver.find_element(By.ID, "error").text
    finally:
        driver.quit()


def test_page_streams_the_microphone_and_shows_live_segments(page_service, service_files, tmp_path):
    """Chromium's fake capture device plays an 11 s recording into the page, which streams it to /v1/stream: the
    segment rows appear while it records, and stopping gives a file-level verdict."""
    driver = browser(tmp_path / "profile", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                     "--autoplay-policy=no-user-gesture-required",
                     f"--use-file-for-fake-audio-capture={service_files['joined']}")
    try:
        _open(driver, page_service)
        driver.find_element(By.ID, "record").click()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(driver.find_elements(By.CSS_SELECTOR, "tr.segment")) < 2:
            assert not driver.find_element(By.ID, "error").text, driver.find_element(By.ID, "error").text
            time.sleep(0.2)
        live = driver.find_elements(By.CSS_SELECTOR, "tr.segment")
        assert len(live) >= 2
        starts = [float(row.find_elements(By.TAG_NAME, "td")[0].text) for row in live[:2]]
        assert starts == [0.0, 2.02]  # the grid of the stream: 4.0375 s windows every 2.01875 s (2 decimals)
        assert "ms after its window ended" in driver.find_element(By.ID, "live-status").text
        driver.find_element(By.ID, "stop").click()
        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "live-status").text == "done")
        assert driver.find_element(By.ID, "verdict").text in ("bona fide", "spoof", "no speech")
        records = page_service.records_until(lambda r: r.get("event") == "stream", 1)
        assert records and records[-1]["status"] == 200, json.dumps(records)
    finally:
        driver.quit()
