"""The report of a tiny finished suite in a real headless Chromium (marked `browser`)."""

import pytest
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.browser

IMAGES = "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"


def open_page(driver, path):
    driver.get(path.as_uri())
    driver.get_log("browser")  # what an earlier page logged is not this page's
    driver.refresh()


def severe(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_front_page_loads_with_every_image_and_no_console_errors(chromium, tiny_suite):
    open_page(chromium, tiny_suite / "report" / "index.html")
    assert chromium.title == "vaebench report: tiny"
    images = chromium.execute_script(IMAGES)
    assert len(images) >= 3
    assert [src for src, done, width in images if not (done and width > 0)] == []
    assert severe(chromium) == []


def column_values(driver, col):
    rows = driver.find_elements(By.CSS_SELECTOR, "#leaderboard-table tbody tr")
    return [r.find_elements(By.TAG_NAME, "td")[col].get_attribute("data-sort") for r in rows]


def test_clicking_a_header_sorts_by_that_column(chromium, tiny_suite):
    open_page(chromium, tiny_suite / "report" / "index.html")
    headers = chromium.find_elements(By.CSS_SELECTOR, "#leaderboard-table thead th")
    col = next(i for i, h in enumerate(headers) if h.text.split("\n")[0] == "elbo")
    headers[col].click()
    up = [float(v) for v in column_values(chromium, col)]
    assert up == sorted(up) and len(set(up)) == 2
    headers[col].click()
    assert [float(v) for v in column_values(chromium, col)] == sorted(up, reverse=True)
    labels = next(i for i, h in enumerate(headers) if h.text == "configuration")
    headers[labels].click()
    assert column_values(chromium, labels) == ["beta_vae beta=4.0,latent_dim=4", "vae latent_dim=4"]
    assert severe(chromium) == []


def test_each_run_link_opens_that_runs_page(chromium, tiny_suite):
    open_page(chromium, tiny_suite / "report" / "index.html")
    links = [(a.get_attribute("title"), a.get_attribute("href"))
             for a in chromium.find_elements(By.CSS_SELECTOR, "a.run-link")]
    assert len(links) == 4
    for run_id, href in links:
        chromium.get(href)
        assert run_id in chromium.page_source
        model = run_id.split("-")[0]
        assert chromium.find_element(By.ID, "run-title").text.startswith(model)
        images = chromium.execute_script(IMAGES)
        assert len(images) >= 4 and all(done and width > 0 for _, done, width in images)
    assert severe(chromium) == []
