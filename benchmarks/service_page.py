"""A screenshot of the page at ``/`` answering a real product (zero-shot into Shopify, mapped
to Google), taken in headless Chromium: ``benchmarks/results/service_page.png``.

Usage:
    python -m benchmarks.service_page [--title "Women's leather ankle boots"] [--image PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.service_latency import RESULTS, Server

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1000,1250")


def screenshot(url: str, title: str, image: str | None, out: Path) -> str:
    """Type ``title`` (and attach ``image``), submit, wait for the answer, save the page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path="/usr/bin/chromedriver"))
    try:
        driver.get(url + "/")
        driver.find_element(By.ID, "title").send_keys(title)
        if image:
            driver.execute_script("document.getElementById('file').hidden = false;")
            driver.find_element(By.ID, "file").send_keys(str(Path(image).resolve()))
            driver.execute_script("document.getElementById('file').hidden = true;")
        driver.find_element(By.ID, "submit").click()
        WebDriverWait(driver, 120).until(expected_conditions.text_to_be_present_in_element((By.ID, "path"), ">"))
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
        return driver.find_element(By.ID, "path").text
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--title", default="Women's leather ankle boots with block heel")
    parser.add_argument("--image", help="a product photo to drop as well")
    parser.add_argument("--out", default=str(RESULTS / "service_page.png"))
    args = parser.parse_args(argv)
    server = Server(["--taxonomy", "shopify", "--map-to", "google"], threads=2)
    try:
        path = screenshot(server.url, args.title, args.image, Path(args.out))
    finally:
        server.stop()
    print(f"{args.title!r} -> {path}; screenshot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
