"""The playground page in a real headless browser (Debian's chromium + chromium-driver through Selenium) against a
live server: type a prompt, watch tokens stream, hover a token, hover a verbatim training span, switch a memory off,
apply an edit and see the completion change, revert. Screenshots go to $LMLAB_SCREENSHOTS (default: this test's
tmp dir)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# Counts the separate DOM updates that add generated tokens: a streamed completion arrives in several.
WATCH_TOKENS = """
window.tokenBatches = 0;
new MutationObserver((records) => {
  if (records.some((r) => [...r.addedNodes].some((n) => n.classList && n.classList.contains('generated'))))
    window.tokenBatches += 1;
}).observe(document.getElementById('completion'), {childList: true});
"""


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them: "
                    "apt-get install chromium chromium-driver)")
    opts = Options()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        opts.add_argument(arg)
    b = webdriver.Chrome(service=Service(driver), options=opts)
    yield b
    b.quit()


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("LMLAB_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait(browser, condition, timeout=120):
    return WebDriverWait(browser, timeout).until(lambda b: condition(b))


def completion_text(browser) -> str:
    """The generated tokens' text (textContent: Selenium's .text would drop the spaces that tokens start with)."""
    return "".join(s.get_attribute("textContent") for s in
                   browser.find_elements(By.CSS_SELECTOR, "#completion .generated")).replace("<eos>", "")


def generate_in_page(browser) -> str:
    browser.execute_script("document.getElementById('completion').dataset.done = ''")
    browser.find_element(By.ID, "generate").click()
    wait(browser, lambda b: b.find_element(By.ID, "completion").get_attribute("data-done") == "1")
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#memories .memory"))
    return completion_text(browser)


def test_playground_end_to_end(browser, world_server, edit_case, shots):
    prompt = edit_case["prompt"].replace("{}", edit_case["subject"])
    browser.get(world_server.url + "/")
    wait(browser, lambda b: "layers" in b.find_element(By.ID, "model-name").text)
    browser.find_element(By.ID, "prompt").send_keys(prompt)
    max_tokens = browser.find_element(By.ID, "max-tokens")
    max_tokens.clear()
    max_tokens.send_keys("6")
    browser.execute_script(WATCH_TOKENS)
    original = generate_in_page(browser)
    tokens = browser.find_elements(By.CSS_SELECTOR, "#completion .generated")
    assert len(tokens) == 6 and original.strip()
    assert browser.execute_script("return window.tokenBatches") > 1  # tokens arrived one after another
    assert all(t.get_attribute("data-prob") for t in tokens)  # coloured by probability
    assert len(browser.find_elements(By.CSS_SELECTOR, "#lens tr")) == 1 + 2 * 4  # embed + before/after 4 MLPs
    assert browser.find_elements(By.CSS_SELECTOR, "#attention td")
    browser.save_screenshot(str(shots / "1-streamed.png"))

    ActionChains(browser).move_to_element(tokens[0]).perform()
    tip = browser.find_element(By.ID, "tooltip")
    wait(browser, lambda b: tip.is_displayed())
    assert len(tip.find_elements(By.CSS_SELECTOR, "tr")) == 5  # top-5 alternatives
    browser.save_screenshot(str(shots / "2-hover.png"))
    ActionChains(browser).move_to_element(browser.find_element(By.ID, "prompt")).perform()

    # Training data: the prompt + completion with its verbatim training spans marked; hovering one lists the
    # documents it occurs in, the span itself marked inside each snippet.
    span = wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#spans-text .verbatim"))[0]
    pieces = browser.find_elements(By.CSS_SELECTOR, "#spans-text span")
    shown = "".join(p.get_attribute("textContent") for p in pieces)
    assert shown == prompt + original
    ActionChains(browser).move_to_element(span).perform()
    sources = wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#spans-documents .document mark"))
    assert span.get_attribute("textContent") in sources[0].get_attribute("textContent")
    assert "active" in span.get_attribute("class")
    browser.save_screenshot(str(shots / "2b-training-spans.png"))

    first_memory = browser.find_element(By.CSS_SELECTOR, "#memories .memory")
    first_memory.find_element(By.CSS_SELECTOR, ".memory-off").click()
    assert "off" in first_memory.get_attribute("class")
    browser.find_element(By.ID, "regenerate").click()
    wait(browser, lambda b: b.find_elements(By.ID, "intervened-text"))
    assert browser.find_element(By.ID, "original-text").text == original.strip()
    browser.save_screenshot(str(shots / "3-memory-off.png"))

    for field, key in (("edit-subject", "subject"), ("edit-prompt", "prompt"), ("edit-target", "target_new")):
        browser.find_element(By.ID, field).send_keys(edit_case[key])
    browser.find_element(By.ID, "apply-edit").click()
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#edit-result td.after"), timeout=300)
    assert browser.find_element(By.CSS_SELECTOR, "#edit-result td.before").text.startswith(original.strip())
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#edits li"))
    wait(browser, lambda b: completion_text(b).strip().startswith(edit_case["target_new"]))
    edited = completion_text(browser)
    assert edited != original
    browser.save_screenshot(str(shots / "4-edited.png"))

    browser.find_element(By.CSS_SELECTOR, "#edits .revert").click()
    wait(browser, lambda b: not b.find_elements(By.CSS_SELECTOR, "#edits li"))
    wait(browser, lambda b: completion_text(b) == original)
    browser.save_screenshot(str(shots / "5-reverted.png"))
