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

# Per chart on the page: what it draws (text: what it says), and whether it shows an error or "no results".
CHART_STATE_JS = """() => [...document.querySelectorAll('[data-test="chart-grid-component"]')].map(el => ({
    title: (el.querySelector('[data-test="editable-title"]') || el).innerText.trim(),
    loading: el.querySelectorAll('[data-test="loading-indicator"], .loading').length,
    canvas: el.querySelectorAll('[data-test="chart-container"] canvas').length,
    rows: el.querySelectorAll('[data-test="chart-container"] tbody tr').length,
    bigNumber: [...el.querySelectorAll('.header-line')].map(e => e.innerText.trim()).join(''),
    text: (el.querySelector('[data-test="chart-container"]') || {innerText: ''}).innerText.trim(),
    marks: el.querySelectorAll('[data-test="chart-container"] [data-chiso-mark]').length,
    errors: el.querySelectorAll('.alert-danger, .ant-alert-error, [data-test="error-message"]').length,
    empty: /No results were returned|No data|Truy vấn không trả về kết quả|Không có dữ liệu/
        .test(el.innerText),
}))"""


def dashboard_slugs() -> list[str]:
    """The slugs of every dashboard asset."""
    return sorted(yaml.safe_load(p.read_text(encoding="utf-8"))["slug"]
                  for p in (superset.ASSETS_DIR / "dashboards").glob("*.yaml"))


def dashboard_chart_uuids(slug: str) -> set[str]:
    """The uuids of the charts placed on the dashboard asset with this slug."""
    for path in (superset.ASSETS_DIR / "dashboards").glob("*.yaml"):
        dashboard = yaml.safe_load(path.read_text(encoding="utf-8"))
        if dashboard["slug"] == slug:
            return {item["meta"]["uuid"] for item in dashboard["position"].values()
                    if isinstance(item, dict) and item.get("type") == "CHART"}
    raise KeyError(slug)


def reimport_and_read(slug: str) -> tuple[dict, list[dict]]:
    """Import the assets once more, then read the dashboard and its charts back through the API."""
    client = superset.api_client()
    try:
        superset.import_bundle()
        dashboard = client.get(f"/api/v1/dashboard/{slug}").json()["result"]
        charts = client.get(f"/api/v1/dashboard/{slug}/charts").json()["result"]
    finally:
        client.close()
    return dashboard, charts


def render_dashboard(base_url: str, slug: str, screenshot: str,
                     login: tuple[str, str] | None = None) -> tuple[list[dict], str]:
    """Log in (as the admin, or as `login`: user and password), open the dashboard, wait until every
    chart finished; screenshot to test-artifacts/. Returns each chart's state (CHART_STATE_JS) and the
    page's text."""
    charts, text, _ = render_dashboard_probed(base_url, slug, screenshot, {}, login)
    return charts, text


def render_dashboard_probed(base_url: str, slug: str, screenshot: str, probes: dict[str, str],
                            login: tuple[str, str] | None = None) -> tuple[list[dict], str, dict]:
    """render_dashboard, plus the result of each probe (a JavaScript function's source, run on the page once
    every chart finished), by name, and under "http_errors" every 4xx/5xx answer Superset gave the page."""
    from playwright.sync_api import sync_playwright

    expected = len(dashboard_chart_uuids(slug))
    user, password = login or superset.admin_login()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 2400}, locale="vi-VN")
            external, failed = [], []
            page.on("request", lambda r: None if r.url.startswith((base_url, "data:", "blob:"))
                    else external.append(r.url))
            page.on("response", lambda r: failed.append(f"{r.status} {r.request.method} {r.url}")
                    if r.status >= 400 and r.url.startswith(base_url) else None)
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
            # A full-page screenshot of a page taller than the window catches the grid re-laid out and empty:
            # grow the window to the page instead, then give ECharts time to animate the charts in.
            height = page.evaluate("document.documentElement.scrollHeight")
            page.set_viewport_size({"width": 1600, "height": max(2400, height)})
            page.wait_for_timeout(2500)
            page.screenshot(path=str(ARTIFACTS / screenshot))
            charts = page.evaluate(CHART_STATE_JS)
            text = page.inner_text("body")
            results = {name: page.evaluate(js) for name, js in probes.items()}
            results["http_errors"] = failed  # every answer of Superset's that was 4xx or 5xx
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


def vi_number(value, decimals: int = 2) -> str:
    """A number as the dashboards print it (D3_FORMAT of superset_config.py: ',' decimal, '.' thousands)."""
    return f"{value:,.{decimals}f}".translate(str.maketrans(",.", ".,"))


def chart_by_title(charts: list[dict], title: str) -> dict:
    found = [chart for chart in charts if chart["title"] == title]
    assert len(found) == 1, (title, [chart["title"] for chart in charts])
    return found[0]
