"""Browser tests of the web console, in Debian's headless Chromium.

Run by scripts/console-test.sh (which starts the API): a clerk's day from the
console alone (sign in, dashboard and live feed, product search, receive and
issue by scanning, an unknown barcode, scans queued offline and applied once,
a count), the admin screens, keyboard-only use, accessible names of every
control, WCAG AA contrast of every text, no console errors and no request to
another host. Each check fails loudly; there are no retries around asserts.
"""

import gzip
import json
import os
import pathlib
import re
import sys
import time
import urllib.error
import urllib.request
from datetime import date, datetime, timedelta
from urllib.parse import urlparse

from playwright.sync_api import expect, sync_playwright

BASE = os.environ["CONSOLE_URL"]
ADMIN_EMAIL = os.environ["ADMIN_EMAIL"]
ADMIN_PASSWORD = os.environ["ADMIN_PASSWORD"]
SHOTS = pathlib.Path(os.environ.get("SCREENSHOTS", "target/console-test"))
EAN = "4006381333931"  # a valid EAN-13
GTIN14 = "0" + EAN
GS = "\x1d"  # FNC1 as a keyboard-wedge scanner sends it
SOON_LOT, EXPIRED_LOT = "L-2401", "L-2311"
SOON = date.today() + timedelta(days=10)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# ---- the API, called directly to arrange data and to check results --------

def call(method, path, token=None, body=None):
    req = urllib.request.Request(BASE + path, method=method)
    req.add_header("Accept", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, data, timeout=10) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {path}: {e.code} {e.read().decode()}") from None


def login(email, password):
    return call("POST", "/api/v1/auth/login", body={"email": email, "password": password})["access_token"]


def level(token, product, warehouse):
    stock = call("GET", f"/api/v1/products/{product}/stock", token)
    return next((w["quantity"] for w in stock["warehouses"] if w["warehouse_id"] == warehouse), 0)


def arrange():
    admin = login(ADMIN_EMAIL, ADMIN_PASSWORD)
    warehouse = call("POST", "/api/v1/warehouses", admin, {"code": "MAIN", "name": "Main stockroom"})["id"]
    dock = call("POST", "/api/v1/warehouses", admin, {"code": "DOCK", "name": "Loading dock"})["id"]
    call("POST", f"/api/v1/warehouses/{dock}/locations", admin, {"code": "D-01", "name": "Dock shelf 1", "barcode": "LOC-D01"})
    # A lot-tracked product in DOCK: one lot expiring soon, one already expired.
    milk = call("POST", "/api/v1/products", admin, {"sku": "MILK-1", "name": "Oat milk", "unit": "l", "tracking": "lot"})["id"]
    for lot, expires, qty in [(SOON_LOT, SOON, 12), (EXPIRED_LOT, date.today() - timedelta(days=1), 3)]:
        call("POST", "/api/v1/stock/receive", admin, {"product_id": milk, "warehouse_id": dock, "quantity": qty,
                                                       "lot": lot, "expires_on": expires.isoformat()})
    product = call("POST", "/api/v1/products", admin, {
        "sku": "WIDGET-1", "name": "Blue widget", "unit": "pcs", "reorder_point": 60, "reorder_quantity": 100,
        "barcodes": [{"barcode": EAN}, {"barcode": "CASE-WIDGET", "pack_quantity": 10}],
    })["id"]
    call("POST", "/api/v1/products", admin, {"sku": "GADGET-7", "name": "Red gadget", "reorder_point": 5})
    call("POST", "/api/v1/stock/receive", admin, {"product_id": product, "warehouse_id": warehouse, "quantity": 50})
    call("POST", "/api/v1/users", admin, {"email": "clerk@console.test", "password": "clerk-password-123",
                                          "role": "clerk", "display_name": "Casey Clerk"})
    return admin, warehouse, product, dock


# ---- checks run in the page -------------------------------------------------

# Every visible text node's colour against the background it is drawn on
# (the first non-transparent ancestor background), per WCAG 2.x: 4.5:1, or
# 3:1 for large text (24px, or 18.66px bold).
CONTRAST_JS = """
() => {
  const parse = (c) => { const m = c.match(/[\\d.]+/g); return m ? m.map(Number) : [0,0,0,0]; };
  const lum = ([r,g,b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v/12.92 : ((v+0.055)/1.055) ** 2.4; };
    return 0.2126*f(r) + 0.7152*f(g) + 0.0722*f(b); };
  const bgOf = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
    if (c.length < 4 || c[3] > 0.5) return c; } return [255,255,255]; };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || !el.checkVisibility()) continue;
    if (el.closest('svg')) continue;
    const st = getComputedStyle(el);
    const fg = parse(st.color); const bg = bgOf(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(st.fontSize); const bold = Number(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) bad.push(`${n.textContent.trim().slice(0, 30)}: ${ratio.toFixed(2)} < ${need}`);
  }
  return bad;
}
"""

CONTROL_ROLES = {"textbox", "searchbox", "combobox", "button", "checkbox", "spinbutton", "link", "radio",
                 "slider", "switch", "progressbar", "img"}


def unnamed_controls(page):
    """Controls with no accessible name, as Chromium's accessibility tree computes it."""
    cdp = page.context.new_cdp_session(page)
    try:
        tree = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    missing = []
    seen = 0
    for node in tree:
        role = node.get("role", {}).get("value")
        if node.get("ignored") or role not in CONTROL_ROLES:
            continue
        seen += 1
        if not str(node.get("name", {}).get("value", "")).strip():
            missing.append(role)
    return seen, missing


class Screens:
    """Per-screen checks: accessible names, contrast, a screenshot."""

    def __init__(self, page):
        self.page = page
        self.names = []

    def check(self, name):
        page = self.page
        seen, missing = unnamed_controls(page)
        assert seen > 0, f"{name}: no controls found in the accessibility tree"
        assert not missing, f"{name}: controls without an accessible name: {missing}"
        low = page.evaluate(CONTRAST_JS)
        assert not low, f"{name}: text below WCAG AA contrast: {low}"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        self.names.append(name)


def expected_errors(errors, text, count=None):
    """Takes the console errors a step caused on purpose out of the list: they must all be `text`."""
    assert errors and all(text in e for e in errors), f"expected only '{text}' errors, got {errors}"
    assert count is None or len(errors) == count, errors
    errors.clear()


def main():
    admin, warehouse, product, dock = arrange()
    origin = urlparse(BASE).netloc
    errors, foreign = [], []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(base_url=BASE, viewport={"width": 1280, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=BASE)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: d.accept())
        page.on("request", lambda r: urlparse(r.url).netloc != origin and not r.url.startswith("data:")
                and foreign.append(r.url))
        screens = Screens(page)

        # The console is served with a strict CSP and revalidated by ETag.
        resp = page.goto("/console/")
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe-inline" not in csp, csp
        etag = resp.headers["etag"]
        again = urllib.request.urlopen(urllib.request.Request(BASE + "/console/app.js"))
        assert again.headers["Cache-Control"] == "no-cache"
        size = sum(len(gzip.compress(p.read_bytes())) for p in pathlib.Path("console").iterdir())
        print(f"console files, gzip total: {size} bytes")
        assert size < 300_000
        assert etag

        # Sign in with the keyboard only: the Email field has focus.
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        timing = page.evaluate("""() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const files = performance.getEntriesByType('resource');
            return {ms: Math.round(nav.loadEventEnd || performance.now()), files: files.length + 1,
                    bytes: files.reduce((n, r) => n + r.encodedBodySize, nav.encodedBodySize)};
        }""")
        print(f"console: sign-in page loaded in {timing['ms']} ms: {timing['files']} files, {timing['bytes']} bytes (uncompressed, straight from the API)")
        assert timing["files"] == len(list(pathlib.Path("console").iterdir())), timing
        screens.check("sign-in")
        expect(page.get_by_label("Email")).to_be_focused()
        page.keyboard.type(ADMIN_EMAIL)
        page.keyboard.press("Tab")
        expect(page.get_by_label("Password")).to_be_focused()
        page.keyboard.type("wrong password!")
        page.keyboard.press("Enter")
        expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
        expected_errors(errors, "the server responded with a status of 401", 1)
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.keyboard.press("Enter")

        # Dashboard: cards, low stock, the chart, and the live feed.
        expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
        expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(
            ["Dashboard", "Products", "Scan", "Counts", "Reservations", "Devices", "Users"])
        units = page.locator(".stat", has_text="Units on hand").locator(".value")
        expect(units).to_have_text("65")  # 50 widgets and 15 l of milk
        expect(page.get_by_role("table", name="Products at or below their reorder point")).to_contain_text("WIDGET-1")
        expect(page.locator("svg.bars rect.in")).to_have_count(1)
        expect(page.locator("#feed-state")).to_have_text("Connected: new movements appear here.")
        call("POST", "/api/v1/stock/receive", admin, {"product_id": product, "warehouse_id": warehouse, "quantity": 5})
        expect(page.get_by_role("log", name="Live feed")).to_contain_text("receipt +5 → 55 at MAIN", timeout=10_000)
        # The lists follow the feed (the summary cards too, but the server caches them for 10 s).
        low_stock = page.get_by_role("table", name="Products at or below their reorder point")
        expect(low_stock.locator("tr", has_text="WIDGET-1").locator("td").nth(2)).to_have_text("55", timeout=10_000)
        # Expiring lots, next to low stock: the one expiring soon, and the expired one marked.
        expiring = page.get_by_role("table", name="Lots expiring within 30 days")
        soon = expiring.locator("tr", has_text=SOON_LOT)
        expect(soon).to_contain_text("MILK-1")
        expect(soon).to_contain_text(SOON.isoformat())
        expect(soon.locator("td").nth(3)).to_have_text("12")
        expect(soon).to_contain_text("DOCK")
        expect(soon).not_to_contain_text("Expired")
        expect(expiring.locator("tr", has_text=EXPIRED_LOT)).to_contain_text("Expired")
        screens.check("dashboard")
        stored = page.evaluate("() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage}) + document.cookie")
        assert "invr_" not in stored and "eyJ" not in stored, "tokens must stay in memory"

        # Products: search as you type, then the product page.
        page.get_by_role("link", name="Products").click()
        expect(page.get_by_role("heading", name="Products", level=1)).to_be_visible()
        page.get_by_label("Search").press_sequentially("widg", delay=40)
        results = page.get_by_role("table")
        expect(results).to_contain_text("matching “widg”")
        expect(results.get_by_role("link")).to_have_text(["WIDGET-1"])
        page.get_by_label("Search").fill(EAN)  # any barcode form finds it
        expect(results.get_by_role("link")).to_have_text(["WIDGET-1"])
        screens.check("products")
        results.get_by_role("link", name="WIDGET-1").click()
        expect(page.get_by_role("heading", name="WIDGET-1 · Blue widget")).to_be_visible()
        stock = page.get_by_role("table", name="Stock by warehouse: 55 pcs in all")
        expect(stock).to_contain_text("MAIN · Main stockroom")
        expect(page.get_by_role("table", name="Stock by location and lot").locator("tbody tr")).to_have_count(1)
        history = page.get_by_role("table", name="Ledger, newest first")
        expect(history.locator("tbody tr")).to_have_count(2)
        expect(history.locator("tbody tr").first).to_contain_text("+5")
        screens.check("product")

        # Receive by hand (goods without a label), with an Idempotency-Key.
        page.get_by_label("Warehouse").select_option(label="MAIN · Main stockroom")
        page.get_by_label("Quantity").fill("3")
        page.get_by_label("Reference (optional)").fill("PO-1")
        page.get_by_role("button", name="Receive", exact=True).click()
        expect(page.locator("#move-status")).to_have_text("Received: level now 58.")
        expect(history.locator("tbody tr").first).to_contain_text("PO-1")
        page.get_by_label("Quantity").fill("3")
        page.get_by_role("button", name="Issue", exact=True).click()
        expect(page.locator("#move-status")).to_have_text("Issued: level now 55.")
        assert level(admin, product, warehouse) == 55

        # An expired access token (the API answers 401 once) is renewed silently
        # with the refresh token, and the request is sent again.
        refreshed = []
        page.on("request", lambda r: r.url.endswith("/api/v1/auth/refresh") and refreshed.append(r.url))
        once = []

        def expire_once(route):
            if once:
                return route.continue_()
            once.append(route.request.url)
            route.fulfill(status=401, content_type="application/problem+json",
                          body='{"type":"/problems/unauthorized","title":"Unauthorized","status":401}')

        page.route("**/api/v1/products?*", expire_once)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Products").click()
        expect(page.get_by_role("table").get_by_role("link", name="WIDGET-1")).to_be_visible()
        assert once and len(refreshed) == 1, (once, refreshed)
        page.unroute("**/api/v1/products?*")
        expected_errors(errors, "the server responded with a status of 401", 1)

        # A lot-tracked product's page: stock by warehouse, location and lot.
        page.get_by_label("Search").fill("MILK")
        page.get_by_role("table").get_by_role("link", name="MILK-1").click()
        expect(page.get_by_role("heading", name="MILK-1 · Oat milk")).to_be_visible()
        expect(page.get_by_role("table", name="Stock by warehouse: 15 l in all")).to_contain_text("DOCK · Loading dock")
        places = page.get_by_role("table", name="Stock by location and lot")
        expect(places.locator("tbody tr")).to_have_count(2)
        lot_row = places.locator("tr", has_text=SOON_LOT)
        expect(lot_row.locator("td")).to_have_text(["DOCK", re.compile("DEFAULT"), SOON_LOT, SOON.isoformat(), "12"])
        expect(places.locator("tr", has_text=EXPIRED_LOT)).to_contain_text("Expired")
        expect(page.locator(".facts")).to_contain_text("By lot")

        # Scan, reached with the keyboard: Tab through the navigation.
        page.locator("body").focus()
        for _ in range(20):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent") == "Scan":
                break
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Scan", level=1)).to_be_visible()
        barcode = page.get_by_label("Barcode")
        expect(barcode).to_be_focused()
        page.get_by_label("Warehouse").select_option(label="MAIN · Main stockroom")
        page.get_by_label("Action").select_option(label="Issue")
        expect(barcode).to_be_focused()  # choosing gives focus back to the scanner field
        status = page.get_by_role("status").first
        detail = page.locator("#scan-detail")

        def scan(code, expect_status, expect_detail=None):
            barcode.fill(code)
            barcode.press("Enter")
            expect(status).to_have_text(expect_status)
            if expect_detail:
                expect(detail).to_contain_text(expect_detail)
            expect(barcode).to_be_focused()
            expect(barcode).to_have_value("")

        page.keyboard.type(EAN)  # a wedge scanner types into the focused field
        page.keyboard.press("Enter")
        expect(status).to_have_text("Applied")
        expect(detail).to_contain_text("Level: 54")
        expect(status).to_have_class("scan-status good")
        assert level(admin, product, warehouse) == 54
        # GS1-128 with FNC1 as ASCII 29: GTIN, lot, then a count of 3.
        scan("]C101" + GTIN14 + "10LOT7" + GS + "303", "Applied", "Level: 51")
        expect(detail).to_contain_text("lot LOT7")
        scan("NOPE-123", "Rejected: unknown barcode")
        expect(status).to_have_class("scan-status bad")
        scan("01" + GTIN14[:-1] + "0", re.compile(r"^Rejected: .*check digit"))  # GS1 with a bad check digit
        page.get_by_label("Action").select_option(label="Receive")
        scan("CASE-WIDGET", "Applied", "Level: 61")  # a case of 10
        assert level(admin, product, warehouse) == 61
        screens.check("scan")

        # Offline: scans wait in the queue and are applied once when back.
        context.set_offline(True)
        page.get_by_label("Action").select_option(label="Issue")
        scan(EAN, "Queued: will be sent when the connection is back")
        scan(EAN, "Queued: will be sent when the connection is back")
        expect(page.locator("#scan-queue")).to_have_text("2 scans waiting to be sent (offline).")
        assert level(admin, product, warehouse) == 61
        context.set_offline(False)
        expect(page.locator("#scan-queue")).to_have_text("No scans waiting.", timeout=15_000)
        # Only now: the queue's retry timer can fail once more while offline,
        # after the scans' own failures were logged (seen in CI).
        expected_errors(errors, "net::ERR_INTERNET_DISCONNECTED")
        assert level(admin, product, warehouse) == 59
        time.sleep(6)  # past the retry timer: nothing is sent again
        assert level(admin, product, warehouse) == 59
        queued = page.get_by_role("table", name="Recent scans").locator("tr", has_text="issue (queued)")
        expect(queued).to_have_count(2)
        expect(queued.first).to_contain_text("Applied")
        expect(queued.first).to_contain_text("Level: 59")
        stored = call("GET", "/api/v1/scanner/events?limit=100", admin)["items"]
        assert sum(1 for e in stored if e["status"] == "applied") == 5, stored
        assert sum(1 for e in stored if e["status"] == "rejected") == 2, stored

        # A location label scanned into Location (then Enter) goes with each scan.
        page.get_by_label("Warehouse").select_option(label="DOCK · Loading dock")
        page.get_by_label("Action").select_option(label="Receive")
        where = page.get_by_label("Location (optional)")
        where.fill("LOC-D01")
        where.press("Enter")
        expect(barcode).to_be_focused()
        scan(EAN, "Applied", "Level: 1")
        placed = call("GET", f"/api/v1/stock/positions?product_id={product}&warehouse_id={dock}", admin)["items"]
        assert [(p["location_code"], p["quantity"]) for p in placed] == [("D-01", 1)], placed
        expect(page.get_by_role("table", name="Recent scans").locator("tbody tr").first).to_contain_text(f"{EAN} @ LOC-D01")
        where.fill("")
        page.get_by_label("Warehouse").select_option(label="MAIN · Main stockroom")

        # Counts: open one, count, complete (admin is a manager too).
        page.get_by_role("link", name="Counts").click()
        expect(page.get_by_role("heading", name="Counts", level=1)).to_be_visible()
        page.get_by_label("Warehouse").select_option(label="MAIN · Main stockroom")
        page.get_by_role("button", name="Open count").click()
        expect(page.get_by_role("heading", name="Count in MAIN · Main stockroom")).to_be_visible()
        expect(page.get_by_role("table")).to_contain_text("0 of 1 lines counted")
        # Count by scanning: scans of the same product add up.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Scan").click()
        page.get_by_label("Action").select_option(label="Count")
        expect(page.get_by_label("Count session")).to_contain_text("Opened")
        scan(EAN, "Applied")
        scan(EAN, "Applied")
        # Both answers are in (the status already read "Applied" after the first).
        expect(page.get_by_role("table", name="Recent scans").locator("tbody tr")).to_have_count(2)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Counts").click()
        page.get_by_role("table", name="Count sessions, newest first").get_by_role("link").first.click()
        expect(page.get_by_role("table")).to_contain_text("1 of 1 lines counted")
        expect(page.get_by_label("Counted WIDGET-1")).to_have_value("2")
        page.get_by_label("Counted WIDGET-1").fill("57")
        page.get_by_role("button", name="Save counted quantities").click()
        expect(page.get_by_role("status")).to_have_text("Saved 1 line.")
        expect(page.get_by_role("table")).to_contain_text("1 of 1 lines counted")
        expect(page.get_by_label("Counted WIDGET-1")).to_have_value("57")
        expect(page.get_by_role("progressbar", name="Lines counted")).to_have_attribute("value", "1")
        screens.check("count")
        page.get_by_role("button", name="Complete count").click()
        expect(page.get_by_role("status")).to_have_text("Completed: 1 adjustment posted.")
        assert level(admin, product, warehouse) == 57
        page.get_by_role("link", name="Counts").first.click()
        expect(page.get_by_role("table", name="Count sessions, newest first")).to_contain_text("completed")
        screens.check("counts")

        # Reservations: reserve by searching the product, see it listed, cancel it.
        page.get_by_role("link", name="Reservations").click()
        expect(page.get_by_role("heading", name="Reservations", level=1)).to_be_visible()
        page.get_by_label("Find product").fill("widg")
        chosen = page.get_by_label("Product", exact=True)
        expect(chosen.locator("option")).to_have_text(["WIDGET-1 · Blue widget"])
        page.get_by_label("Warehouse").select_option(label="MAIN · Main stockroom")
        page.get_by_label("Quantity").fill("1000")
        page.get_by_role("button", name="Reserve", exact=True).click()
        expect(page.get_by_role("alert")).to_have_text(re.compile(r"^Not enough stock: only 57 available"))
        expected_errors(errors, "the server responded with a status of 409", 1)
        page.get_by_label("Quantity").fill("5")
        page.get_by_label("Reference (optional)").fill("SO-1")
        until = datetime.now() + timedelta(days=2)
        page.get_by_label("Expires at (optional)").fill(until.strftime("%Y-%m-%dT%H:%M"))
        page.get_by_role("button", name="Reserve", exact=True).click()
        expect(page.locator("#reservation-status")).to_have_text("Reserved 5 × WIDGET-1 for SO-1.")
        expect(page.get_by_role("alert")).to_be_hidden()
        listed = page.get_by_role("table", name="Reservations (active), newest first")
        row = listed.locator("tbody tr", has_text="SO-1")
        expect(row).to_contain_text("WIDGET-1")
        expect(row).to_contain_text("MAIN · Main stockroom")
        expect(row.locator("td").nth(4)).to_have_text("5")
        expect(row).to_contain_text("active")
        expect(row).not_to_contain_text("never")  # it expires
        held = call("GET", "/api/v1/reservations?reference=SO-1", admin)["items"]
        assert len(held) == 1 and held[0]["status"] == "active" and held[0]["quantity"] == 5 and held[0]["expires_at"], held
        screens.check("reservations")
        # Reserved and available on the product page, when the API reports them.
        if "available" in call("GET", f"/api/v1/products/{product}/stock", admin)["warehouses"][0]:
            row.get_by_role("link", name="WIDGET-1").click()
            by_warehouse = page.get_by_role("table", name=re.compile("^Stock by warehouse"))
            expect(by_warehouse.locator("thead th")).to_contain_text(["On hand", "Reserved", "Available"])
            expect(by_warehouse.locator("tr", has_text="MAIN")).to_contain_text("52")
            page.get_by_role("link", name="Reservations").click()
        page.get_by_role("button", name="Cancel reservation SO-1").click()  # the confirmation is accepted
        expect(page.locator("#reservation-status")).to_have_text("Cancelled reservation SO-1.")
        expect(page.get_by_role("table", name="Reservations (active), newest first")).not_to_contain_text("SO-1")
        page.get_by_label("Status").select_option(label="Cancelled")
        cancelled = page.get_by_role("table", name="Reservations (cancelled), newest first").locator("tbody tr", has_text="SO-1")
        expect(cancelled).to_contain_text("cancelled")
        expect(cancelled.get_by_role("button")).to_have_count(0)
        assert call("GET", "/api/v1/reservations?reference=SO-1", admin)["items"][0]["status"] == "cancelled"

        # Devices: a new key is shown once, with a copy button.
        page.get_by_role("link", name="Devices").click()
        page.get_by_label("Device name").fill("Dock 3 handheld")
        page.get_by_label("MAIN · Main stockroom").check()
        page.get_by_role("button", name="Create device").click()
        key = page.get_by_label("Device key")
        expect(key).to_have_value(re.compile(r"^invd_"))
        page.get_by_role("button", name="Copy key").click()
        expect(page.get_by_text("Copied.")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == key.input_value()
        expect(page.get_by_role("table", name="Devices")).to_contain_text("Dock 3 handheld")
        screens.check("devices")
        device_key = key.input_value()
        found = call("GET", f"/api/v1/scanner/lookup/{EAN}", device_key)
        assert found["product"]["sku"] == "WIDGET-1"

        # Users (admin).
        page.get_by_role("link", name="Users").click()
        expect(page.get_by_role("table", name="Users")).to_contain_text("clerk@console.test")
        screens.check("users")

        # Sign out, then a clerk sees no admin screens.
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Email").fill("clerk@console.test")
        page.get_by_label("Password").fill("clerk-password-123")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(
            ["Dashboard", "Products", "Scan", "Counts", "Reservations"])
        page.goto("/console/#/users")
        expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()  # not for clerks
        page.reload()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()  # a reload forgets the tokens

        browser.close()

    assert not errors, f"console errors: {errors}"
    assert not foreign, f"requests to other hosts: {foreign}"
    print(f"console: all checks passed; screenshots of {', '.join(screens.names)} in {SHOTS}")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"console test FAILED: {e}", file=sys.stderr)
        raise
