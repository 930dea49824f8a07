"""Open a Superset dashboard in Debian's headless Chromium (Playwright) and report what each chart drew."""

from __future__ import annotations

from pathlib import Path

import yaml

from ingestion import superset

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's own browsers cannot be downloaded here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Per chart on the page: what it draws, and whether it shows an error or "no results".
CHART_STATE_JS = """() => [...document.querySelectorAll('[data-test="chart-grid-component"]')].map(el => ({
    title: (el.querySelector('[data-test="editable-title"]') || el).innerText.trim(),
    loading: el.querySelectorAll('[data-test="loading-indicator"], .loading').length,
    canvas: el.querySelectorAll('[data-test="chart-container"] canvas').length,
    rows: el.querySelectorAll('[data-test="chart-container"] tbody tr').length,
    bigNumber: [...el.querySelectorAll('.header-line')].map(e => e.innerText.trim()).join(''),
    marks: el.querySelectorAll('[data-test="chart-container"] [data-chiso-mark]').length,
    errors: el.querySelectorAll('.alert-danger, .ant-alert-error, [data-test="error-message"]').length,
    empty: /No results were returned|No data/.test(el.innerText),
}))"""


def dashboard_chart_uuids(slug: str) -> set[str]:
    """The uuids of the charts placed on the dashboard asset with this slug."""
    for path in (superset.ASSETS_DIR / "dashboards").glob("*.yaml"):
        dashboard = yaml.safe_load(path.read_text(encoding="utf-8"))
        if dashboard["slug"] == slug:
            return {item["meta"]["uuid"] for item in dashboard["position"].values()
                    if isinstance(item, dict) and item.get("type") == "CHART"}
    raise KeyError(slug)


def render_dashboard(base_url: str, slug: str, screenshot: str) -> tuple[list[dict], str]:
    """Log in, open the dashboard, wait until every chart finished; screenshot to test-artifacts/.
    Returns each chart's state (CHART_STATE_JS) and the page's text."""
    charts, text, _ = render_dashboard_probed(base_url, slug, screenshot, {})
    return charts, text


def render_dashboard_probed(base_url: str, slug: str, screenshot: str,
                            probes: dict[str, str]) -> tuple[list[dict], str, dict]:
    """render_dashboard, plus the result of each probe (a JavaScript function's source, run on the page once
    every chart finished), by name."""
    from playwright.sync_api import sync_playwright

    expected = len(dashboard_chart_uuids(slug))
    user, password = superset.admin_login()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 2400}, locale="vi-VN")
            external = []
            page.on("request", lambda r: None if r.url.startswith((base_url, "data:", "blob:"))
                    else external.append(r.url))
            page.goto(f"{base_url}/login/")
            page.fill("#username", user)
            page.fill("#password", password)
            page.keyboard.press("Enter")
            page.wait_for_url("**/superset/welcome/**")
            page.goto(f"{base_url}/superset/dashboard/{slug}/")
            page.wait_for_function(
                f"""() => {{
                    const charts = ({CHART_STATE_JS})();
                    return charts.length === {expected} && charts.every(c => !c.loading &&
                        (c.canvas || c.rows || c.bigNumber || c.marks || c.errors || c.empty));
                }}""", timeout=120_000)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
            charts = page.evaluate(CHART_STATE_JS)
            text = page.inner_text("body")
            results = {name: page.evaluate(js) for name, js in probes.items()}
        finally:
            browser.close()
    # Superset's front end asks for a telemetry pixel; the content security policy blocks it.
    assert all("scarf.sh" in url for url in external), external
    return charts, text, results


def assert_every_chart_has_data(charts: list[dict]) -> None:
    for chart in charts:
        assert not chart["errors"] and not chart["empty"], chart
        assert (chart["canvas"] or chart["rows"] or chart["marks"]
                or any(ch.isdigit() for ch in chart["bigNumber"])), chart
