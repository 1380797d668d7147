"""The web page in a real headless browser (Debian's chromium + chromedriver, via selenium).

Starts `memderain serve`'s app with uvicorn on a free loopback port, uploads a photo through
the file input, and checks that the de-rained result appears (the very bytes the model
produces) with a working download link; then uploads a non-image and checks the message.
"""

from __future__ import annotations

import base64
import io
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("chromium/chromedriver not installed (apt-get install -y chromium "
                "chromium-driver; see docs/web.md)", allow_module_level=True)
pytest.importorskip("selenium", reason="selenium not installed (dev extra)")
uvicorn = pytest.importorskip("uvicorn", reason="web extras not installed")
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from web_helpers import build_app, make_image, reference_derain, tiny_checkpoint

CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1200,900"]


def bound_socket() -> socket.socket:
    """A listening-ready socket on a free port, kept open and handed to uvicorn (no race
    between choosing a port and binding it)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ckpt, model = tiny_checkpoint(tmp_path_factory.mktemp("browser") / "tiny.pt")
    sock = bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(build_app(ckpt), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", model
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chrome-profile')}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_upload_shows_result_and_download(server, browser, tmp_path):
    url, model = server
    image = make_image(52, 36)
    photo = tmp_path / "rainy street.png"
    image.save(photo)
    browser.get(url + "/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: "megapixels" in d.find_element(By.ID, "limits").text)
    browser.find_element(By.ID, "file").send_keys(str(photo))
    wait.until(lambda d: d.execute_script(
        "const a = document.getElementById('after');"
        "return !document.getElementById('result').hidden && a.complete && a.naturalWidth > 0;"))
    size = browser.execute_script(
        "const a = document.getElementById('after'); return [a.naturalWidth, a.naturalHeight];")
    assert size == [52, 36]
    assert browser.find_element(By.ID, "after").is_displayed()
    assert browser.find_element(By.ID, "before").is_displayed()
    assert not browser.find_element(By.ID, "message").is_displayed()
    link = browser.find_element(By.ID, "download")
    assert link.get_attribute("download") == "rainy_street_derained.png"
    href = link.get_attribute("href")
    assert href.startswith("blob:")
    # The bytes behind the download link are the model's result.
    b64 = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.arrayBuffer()).then(buf => {"
        "  let s = ''; new Uint8Array(buf).forEach(b => s += String.fromCharCode(b));"
        "  done(btoa(s)); });", href)
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))
    expected = reference_derain(model, image)
    assert np.abs(shown.astype(int) - expected.astype(int)).max() <= 1
    # The slider view swaps in the overlaid comparison.
    browser.find_element(By.CSS_SELECTOR, 'input[name="view"][value="slider"]').click()
    assert browser.find_element(By.ID, "compare-after").is_displayed()
    assert not browser.find_element(By.ID, "after").is_displayed()


def test_non_image_shows_the_servers_message(server, browser, tmp_path):
    url, _ = server
    notes = tmp_path / "notes.txt"
    notes.write_text("definitely not a photo")
    browser.get(url + "/")
    browser.find_element(By.ID, "file").send_keys(str(notes))
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_element(By.ID, "message").is_displayed())
    text = browser.find_element(By.ID, "message").text
    assert "notes.txt is not an image" in text
    assert not browser.find_element(By.ID, "result").is_displayed()
