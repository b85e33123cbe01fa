"""The chat page in headless Chromium against `collapselab serve` running as a real process:
a message gets a streamed reply; compare mode shows two generations' replies side by side."""

from __future__ import annotations

import pytest
from serve_process import collapselab, free_port, stop, wait_healthy
from tiny import chat_run

pytestmark = pytest.mark.e2e


def test_page_chats_and_compares_two_generations(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    run = chat_run(tmp_path, generations=3)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = collapselab(["serve", "--run", str(run), "--generation", "0", "--port", str(port)], log)
    try:
        wait_healthy(url, proc, log)
        browser.get(url)
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: len(Select(d.find_element(By.ID, "model-a")).options) == 3)
        assert Select(browser.find_element(By.ID, "model-a")).first_selected_option.get_attribute("value") == "replace/gen-0"
        browser.find_element(By.ID, "max_tokens").clear()
        browser.find_element(By.ID, "max_tokens").send_keys("12")

        browser.find_element(By.ID, "message").send_keys("the cat sat on the mat")
        browser.find_element(By.ID, "send").click()
        reply = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#log-a .reply[data-done]"))
        assert reply.get_attribute("data-done") == "ok", reply.text
        meta = reply.find_element(By.CSS_SELECTOR, ".meta").text
        assert "replace/gen-0 · generation 0" in meta and "tokens" in meta

        browser.find_element(By.ID, "compare-toggle").click()
        Select(browser.find_element(By.ID, "model-b")).select_by_value("replace/gen-2")
        browser.find_element(By.ID, "message").send_keys("how are you today?")
        browser.find_element(By.ID, "send").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log-a .reply[data-done]")) == 2 and d.find_elements(By.CSS_SELECTOR, "#log-b .reply[data-done]"))
        a = browser.find_elements(By.CSS_SELECTOR, "#log-a .reply")[-1]
        b = browser.find_element(By.CSS_SELECTOR, "#log-b .reply")
        assert a.get_attribute("data-done") == b.get_attribute("data-done") == "ok"
        assert "generation 0" in a.find_element(By.CSS_SELECTOR, ".meta").text
        assert "generation 2" in b.find_element(By.CSS_SELECTOR, ".meta").text
        assert browser.find_element(By.ID, "column-b").is_displayed()
        browser.save_screenshot(str(tmp_path / "compare.png"))
        # both replies came as a stream: the server counted two streamed chat completions more
        metrics = __import__("httpx").get(f"{url}/metrics").text
        assert 'collapselab_requests_total{route="/v1/chat/completions",status="200"} 3' in metrics
    finally:
        stop(proc)
