"""The web portal in a real browser: headless Chromium (Debian's chromium + chromium-driver, through Selenium)
against the portal served by uvicorn on 127.0.0.1.

It uploads a SyntheticFaces photo carrying EXIF, protects it with ``blur``, and checks the result behind the
download link: a different image, without metadata. The detect page is loaded too (and used when the server
offers a detector). Screenshots of both pages go to the test's folder, and also to ``$PROFACE_SCREENSHOTS``
(e.g. ``docs/images``) when that is set: that is how the documentation's screenshots are made::

    PROFACE_SCREENSHOTS=docs/images .venv/bin/python -m pytest -q tests/test_serving_browser.py

``PROFACE_BROWSER_RUNS=<runs dir>`` serves that runs directory's checkpoints as well (e.g. a detector).
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from src.datamodules.components.synthetic_face_renderer import render_synthetic_face
from src.serving.portal import PortalSettings, create_app
from src.serving.portal.server import running

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT_S = 60
SIZE = 256

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (`apt-get install chromium chromium-driver`)",
)


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The portal on 127.0.0.1 (a free port) and its scratch folder."""
    scratch = tmp_path_factory.mktemp("portal_scratch")
    runs = os.environ.get("PROFACE_BROWSER_RUNS")
    app = create_app(PortalSettings(temp_dir=scratch, runs=Path(runs) if runs else None))
    with running(app, "127.0.0.1") as url:
        yield url, scratch


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by the Debian chromedriver (nothing downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _photo_with_exif(path: Path) -> np.ndarray:
    image = render_synthetic_face(0, 1, 0, SIZE)
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0132] = "2024:01:01 12:00:00"  # DateTime
    Image.fromarray(image).save(path, "JPEG", quality=95, exif=exif.tobytes())
    assert Image.open(path).getexif()[0x010F] == "SecretCam"
    return np.asarray(Image.open(path).convert("RGB"))


def _screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    target = os.environ.get("PROFACE_SCREENSHOTS")
    if target:
        folder = Path(target) if Path(target).is_absolute() else PROJECT_ROOT / target
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / name)
    return path


def _no_page_errors(driver: Any) -> None:
    """No script error and no content-policy violation in the console."""
    severe = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe


def _options(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        option.get_attribute("value") for option in driver.find_elements(By.CSS_SELECTOR, "#method option")
    ]


def test_protect_page_protects_a_photo(browser: Any, portal: tuple[str, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    url, scratch = portal
    source = tmp_path / "portrait.jpg"
    original = _photo_with_exif(source)
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(f"{url}/")
    wait.until(lambda driver: "blur" in _options(driver))
    Select(browser.find_element(By.ID, "method")).select_by_value("blur")
    browser.find_element(By.ID, "file").send_keys(str(source))
    wait.until(ec.element_to_be_clickable((By.ID, "protect"))).click()
    link = wait.until(ec.visibility_of_element_located((By.ID, "download")))
    href = link.get_attribute("href")
    assert href.startswith("data:image/jpeg;base64,"), href[:40]
    assert link.get_attribute("download") == "portrait_protect.jpg"
    data = base64.b64decode(href.split(",", 1)[1])
    result = Image.open(io.BytesIO(data))
    assert result.format == "JPEG" and not result.getexif() and b"SecretCam" not in data
    pixels = np.asarray(result.convert("RGB")).astype(int)
    assert pixels.shape == original.shape and np.abs(pixels - original).mean() > 1
    assert "protected: 1 face" in browser.find_element(By.ID, "status").text
    assert browser.find_element(By.CSS_SELECTOR, "#result img").get_attribute("naturalWidth") == str(SIZE)
    _no_page_errors(browser)
    _screenshot(browser, tmp_path, "portal_protect.png")
    assert not list(scratch.iterdir())


def test_detect_page(browser: Any, portal: tuple[str, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = portal
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(f"{url}/detect")
    status = browser.find_element(By.ID, "status")
    wait.until(lambda driver: _options(driver) or "no detector" in status.text)
    source = tmp_path / "portrait.jpg"
    _photo_with_exif(source)
    browser.find_element(By.ID, "file").send_keys(str(source))
    if _options(browser):
        wait.until(ec.element_to_be_clickable((By.ID, "detect"))).click()
        wait.until(
            lambda driver: (
                "fake" in status.text or "no face" in status.text or "error" in status.get_attribute("class")
            )
        )
        assert "error" not in status.get_attribute("class"), status.text
        assert browser.find_elements(By.CSS_SELECTOR, "#stage canvas")
    else:
        assert "no detector" in status.text and not browser.find_element(By.ID, "detect").is_enabled()
    _no_page_errors(browser)
    _screenshot(browser, tmp_path, "portal_detect.png")
