"""Swagger UI in a real headless Chromium (Debian's package), driven by Playwright.

Run by scripts/contract.sh: usage `swagger_ui.py BASE_URL ACCESS_TOKEN`.
Checks that /docs renders every tag of the spec, that the page loads nothing
from outside the host, and that Authorize + "Try it out" on
GET /api/v1/auth/me answers 200. Playwright never downloads a browser here:
it drives /usr/bin/chromium.
"""

import json
import sys
import urllib.parse
import urllib.request

from playwright.sync_api import sync_playwright

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main(base: str, token: str) -> None:
    spec = json.load(urllib.request.urlopen(f"{base}/openapi.json"))
    tags = [t["name"] for t in spec.get("tags", [])]
    host = urllib.parse.urlsplit(base).netloc
    outside = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        page = browser.new_page()

        def watch(request):
            url = urllib.parse.urlsplit(request.url)
            if url.scheme in ("http", "https", "ws", "wss") and url.netloc != host:
                outside.append(request.url)

        page.on("request", watch)
        page.goto(f"{base}/docs", wait_until="networkidle")
        page.wait_for_selector(".opblock-tag-section", timeout=30_000)
        shown = page.locator(".opblock-tag-section h3").all_inner_texts()
        missing = [t for t in tags if not any(s.strip().startswith(t) for s in shown)]
        if missing:
            sys.exit(f"swagger ui: tags not rendered: {missing} (shown: {shown})")

        # Authorize with the bearer token.
        page.click("button.authorize")
        page.fill(".auth-container input[type=text], .auth-container input:not([type])", token)
        page.click(".auth-container button.authorize")
        page.click("button.btn-done")

        # Try it out on GET /api/v1/auth/me.
        op = page.locator("#operations-Auth-getCurrentUser")
        op.locator(".opblock-summary").click()
        op.locator("button.try-out__btn").click()
        op.locator("button.execute").click()
        status = op.locator(".live-responses-table .response .response-col_status").first
        status.wait_for(timeout=30_000)
        code = status.inner_text().strip()
        browser.close()

    if code != "200":
        sys.exit(f"swagger ui: GET /api/v1/auth/me answered {code}, expected 200")
    if outside:
        sys.exit(f"swagger ui: loaded from outside the host: {sorted(set(outside))}")
    print(f"swagger ui: ok ({len(tags)} tags rendered, Try it out on /auth/me: 200)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
