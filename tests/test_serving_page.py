"""The page at ``/`` in a real headless Chromium (Debian's ``chromium`` + ``chromedriver``).

Skipped only where Chromium is absent and ``CI`` is unset (`.ci/run` installs it).
"""

from __future__ import annotations

import io
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from PIL import Image  # noqa: E402

from multimodal_cat.feeds.rows import OutputRows  # noqa: E402
from multimodal_cat.mapping.apply import CategoryMapper  # noqa: E402
from multimodal_cat.serving.app import create_app  # noqa: E402
from multimodal_cat.serving.server import running  # noqa: E402
from multimodal_cat.serving.service import Engine, Service  # noqa: E402

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1100,1300",
)


def _binaries() -> tuple[str, str] | None:
    browser = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER_BIN") or shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@contextmanager
def chromium(profile: Path):
    """A headless Chromium driven by selenium, with a fresh profile; always quit."""
    found = _binaries()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are required in CI (apt-get install chromium chromium-driver)")
        pytest.skip("chromium / chromedriver not installed")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path=found[1]))
    try:
        yield driver
    finally:
        driver.quit()


def _text_of(driver, element_id: str, seconds: float = 30) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, seconds).until(
        expected_conditions.text_to_be_present_in_element((By.ID, element_id), " ")
        if element_id == "path" else expected_conditions.visibility_of_element_located((By.ID, element_id))
    )
    return driver.find_element(By.ID, element_id).text


def test_the_page_categorizes_a_typed_title_and_a_dropped_photo(fake_predictor, tmp_path):
    from selenium.webdriver.common.by import By

    predictor = fake_predictor()
    mapper = CategoryMapper.to_targets(predictor.taxonomy, ["google"])
    service = Service(lambda: Engine(OutputRows(predictor, mapper, ["google"]), predictor.taxonomy, "fake"))
    photo = tmp_path / "shorts.png"
    Image.new("RGB", (64, 64), (30, 90, 200)).save(photo)
    with running(create_app(service)) as url, chromium(tmp_path / "profile") as driver:
        while httpx.get(url + "/readyz").status_code != 200:
            time.sleep(0.01)
        driver.get(url + "/")
        assert driver.title.startswith("multimodal-cat")
        driver.find_element(By.ID, "title").send_keys("Running shorts")
        driver.find_element(By.ID, "submit").click()
        assert _text_of(driver, "path") == "Apparel & Accessories > Clothing > Activewear"
        assert driver.find_element(By.ID, "confidence").text == "90%"
        alternatives = driver.find_elements(By.CSS_SELECTOR, "#alternatives tr")
        assert len(alternatives) == 1 and "Activewear" in alternatives[0].text
        mapped = driver.find_element(By.ID, "mappings").text
        assert mapped.startswith("google") and "Activewear" in mapped
        driver.save_screenshot(str(tmp_path / "page.png"))
        # a photo as well: the file input the drop zone feeds
        driver.execute_script("document.getElementById('file').hidden = false;")
        driver.find_element(By.ID, "file").send_keys(str(photo))
        driver.find_element(By.ID, "submit").click()
        for _ in range(300):
            if len(predictor.saw_images) == 2:
                break
            time.sleep(0.05)
        assert predictor.saw_images == [False, True]
        # a refusal is shown on the page, not swallowed
        driver.find_element(By.ID, "title").clear()
        driver.execute_script("document.getElementById('file').value = ''; imageData = null;")
        driver.find_element(By.ID, "submit").click()
        assert "expected a title, description, brand or image" in _text_of(driver, "error")
    assert Image.open(io.BytesIO((tmp_path / "page.png").read_bytes())).size[0] > 500
