"""Superset end to end: start it, import the dashboards (twice), and look at them in a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion import superset

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SLUG = "chi-so-766-toan-quoc"
CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's own browsers cannot be downloaded here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHART_FILES = sorted((superset.ASSETS_DIR / "charts").glob("*.yaml"))

# Per chart on the page: what it draws, and whether it shows an error or "no results".
CHART_STATE_JS = """() => [...document.querySelectorAll('[data-test="chart-grid-component"]')].map(el => ({
    title: (el.querySelector('[data-test="editable-title"]') || el).innerText.trim(),
    loading: el.querySelectorAll('[data-test="loading-indicator"], .loading').length,
    canvas: el.querySelectorAll('[data-test="chart-container"] canvas').length,
    rows: el.querySelectorAll('[data-test="chart-container"] tbody tr').length,
    bigNumber: [...el.querySelectorAll('.header-line')].map(e => e.innerText.trim()).join(''),
    errors: el.querySelectorAll('.alert-danger, .ant-alert-error, [data-test="error-message"]').length,
    empty: /No results were returned|No data/.test(el.innerText),
}))"""


@pytest.fixture(scope="session")
def superset_url(national_pipeline) -> Iterator[str]:
    """Superset over the marts of a real pipeline run; stopped at the end if this session started it."""
    started = superset.status() == "stopped"
    yield superset.up()
    if started:
        superset.down()


def _counts(client) -> dict[str, int]:
    return {kind: client.get(f"/api/v1/{kind}/", params={"q": "(page_size:1)"}).json()["count"]
            for kind in ("dashboard", "chart", "dataset", "database")}


def test_reimport_duplicates_nothing(superset_url: str) -> None:
    client = superset.api_client()
    try:
        before = _counts(client)
        superset.import_bundle()
        superset.import_bundle()
        assert _counts(client) == before
        dashboard = client.get(f"/api/v1/dashboard/{SLUG}").json()["result"]
        assert dashboard["dashboard_title"] == "Chỉ số 766 toàn quốc"
        charts = client.get(f"/api/v1/dashboard/{SLUG}/charts").json()["result"]
        assert len(charts) == len(CHART_FILES)
        datasets = client.get(f"/api/v1/dashboard/{SLUG}/datasets").json()["result"]
        assert all(column["verbose_name"] for ds in datasets for column in ds["columns"])
    finally:
        client.close()


def test_dashboard_renders_every_chart(superset_url: str) -> None:
    from playwright.sync_api import sync_playwright

    user, password = superset.admin_login()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 2400}, locale="vi-VN")
            external = []
            page.on("request", lambda r: None if r.url.startswith((superset_url, "data:", "blob:"))
                    else external.append(r.url))
            page.goto(f"{superset_url}/login/")
            page.fill("#username", user)
            page.fill("#password", password)
            page.keyboard.press("Enter")
            page.wait_for_url("**/superset/welcome/**")
            page.goto(f"{superset_url}/superset/dashboard/{SLUG}/")
            page.wait_for_function(
                f"""() => {{
                    const charts = ({CHART_STATE_JS})();
                    return charts.length === {len(CHART_FILES)} && charts.every(c => !c.loading &&
                        (c.canvas || c.rows || c.bigNumber || c.errors || c.empty));
                }}""", timeout=120_000)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(ARTIFACTS / "superset_chi_so_766_toan_quoc.png"), full_page=True)
            charts = page.evaluate(CHART_STATE_JS)
        finally:
            browser.close()
    for chart in charts:
        assert not chart["errors"] and not chart["empty"], chart
        assert chart["canvas"] or chart["rows"] or any(ch.isdigit() for ch in chart["bigNumber"]), chart
    # Superset's front end asks for a telemetry pixel; the content security policy blocks it.
    assert all("scarf.sh" in url for url in external), external
