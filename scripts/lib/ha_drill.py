#!/usr/bin/env python3
"""The failover drill's client side (started by scripts/ha-drill.sh).

Offers stock movements at a steady rate through the API, each with its own
Idempotency-Key; SIGKILLs the Patroni leader's postmaster; keeps offering
until the new leader has taken writes for a while; retries every movement
that got no 201 with the same key and body; waits for the old leader to
rejoin as a synchronous standby; then checks on every node that each
acknowledged movement is in the ledger exactly once (by the key, used as the
movement's reference) and that level = sum(ledger) for every level row.
Meanwhile it reads reports (transaction listing, CSV export: DATABASE_READ_URL)
and polls /ready on each replica. Exit status 1 on any 500, timeout, lost or
doubled movement, or mismatch. Standard library + psycopg2 (a Patroni
dependency) only.
"""

import argparse
import collections
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2

CLIENT_TIMEOUT = 15.0  # seconds; longer than any answer the API may take
T0 = time.monotonic()


def now():
    return time.monotonic() - T0


def say(msg):
    print(f"[{now():6.1f}s] {msg}", flush=True)


def call(method, url, body=None, token=None, key=None, timeout=CLIENT_TIMEOUT):
    """One HTTP request -> (outcome, parsed body). outcome is the status code
    as a string, with ' problem' for problem+json (and ' without Retry-After'
    for a 503 lacking it), or 'timeout' / 'conn-error'."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if key:
        req.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status, headers = resp.status, resp.headers
    except urllib.error.HTTPError as e:
        raw = e.read()
        status, headers = e.code, e.headers
    except TimeoutError:
        return "timeout", None
    except (urllib.error.URLError, ConnectionError, OSError) as e:
        if "timed out" in str(e):
            return "timeout", None
        return "conn-error", None
    ctype = headers.get("Content-Type", "")
    outcome = str(status) + (" problem" if "problem+json" in ctype else "")
    if status == 503 and not headers.get("Retry-After"):
        outcome += " without Retry-After"
    try:
        parsed = json.loads(raw) if "json" in ctype else raw
    except ValueError:
        parsed = raw
    return outcome, parsed


class Drill:
    def __init__(self, args):
        self.args = args
        self.api = args.api
        self.nodes = []
        for spec in args.node:
            name, pg, rest, data = spec.split(",")
            self.nodes.append({"name": name, "pg": int(pg), "rest": int(rest), "data": data})
        self.lock = threading.Lock()
        self.movements = {}  # key -> dict(path, body, attempts: [(t, outcome)], ids)
        self.acks = []  # completion times of 201s
        self.first = collections.Counter()  # outcome of first attempts
        self.retried = collections.Counter()
        self.reports = collections.Counter()  # (phase, endpoint, outcome)
        self.ready = collections.Counter()  # (phase, replica, outcome)
        self.t_kill = None
        self.t_leader = None
        self.t_first_ack_after_kill = None
        self.stop = threading.Event()

    # ---- helpers ---------------------------------------------------------
    def phase(self, t):
        if self.t_kill is None or t < self.t_kill:
            return "before"
        if self.t_first_ack_after_kill is None or t < self.t_first_ack_after_kill:
            return "outage"
        return "after"

    def rest_ok(self, node, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{node['rest']}{path}", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def leader(self):
        return next((n for n in self.nodes if self.rest_ok(n, "/primary")), None)

    # ---- set-up ----------------------------------------------------------
    def setup(self):
        outcome, body = call("POST", f"{self.api}/api/v1/auth/login",
                             {"email": self.args.admin, "password": os.environ["DRILL_ADMIN_PASSWORD"]})
        if outcome != "200":
            sys.exit(f"login failed: {outcome} {body}")
        self.token = body["access_token"]
        run = uuid.uuid4().hex[:6]
        outcome, body = call("POST", f"{self.api}/api/v1/warehouses",
                             {"code": f"DRILL-{run}", "name": "Failover drill"}, self.token)
        if outcome != "201":
            sys.exit(f"creating the warehouse failed: {outcome} {body}")
        self.warehouse = body["id"]
        self.products = []
        for i in range(4):
            outcome, body = call("POST", f"{self.api}/api/v1/products",
                                 {"sku": f"DRILL-{run}-{i}", "name": f"Drill item {i}", "unit_cost": "1.00"},
                                 self.token)
            if outcome != "201":
                sys.exit(f"creating a product failed: {outcome} {body}")
            self.products.append(body["id"])
        # Enough stock that the drill's issues are never refused.
        for p in self.products:
            self.movement("receive", p, 1_000_000)
        say(f"set up: 1 warehouse, {len(self.products)} products stocked through the API")

    # ---- movements -------------------------------------------------------
    def movement(self, kind, product, quantity):
        key = f"drill-{uuid.uuid4()}"
        body = {"product_id": product, "warehouse_id": self.warehouse,
                "quantity": quantity, "reference": key}
        with self.lock:
            self.movements[key] = {"path": f"/api/v1/stock/{kind}", "body": body, "attempts": [], "ids": None}
        self.attempt(key, first=True)

    def attempt(self, key, first=False):
        m = self.movements[key]
        outcome, body = call("POST", self.api + m["path"], m["body"], self.token, key)
        t = now()
        with self.lock:
            m["attempts"].append((t, outcome))
            (self.first if first else self.retried)[outcome] += 1
            if outcome == "201":
                ids = sorted(tx["id"] for tx in body["transactions"])
                if m["ids"] is not None and m["ids"] != ids:
                    m["mismatch"] = (m["ids"], ids)  # a replay must answer the same rows
                m["ids"] = ids
                self.acks.append(t)
                if self.t_kill is not None and self.t_first_ack_after_kill is None and t > self.t_kill:
                    self.t_first_ack_after_kill = t
        return outcome

    def offer(self, pool, seconds):
        """Submits movements at --rate per second for `seconds` (or until stop)."""
        interval = 1.0 / self.args.rate
        end = now() + seconds
        n = 0
        next_at = now()
        while now() < end and not self.stop.is_set():
            product = self.products[n % len(self.products)]
            if n % 4 == 3:
                pool.submit(self.movement, "issue", product, 1)
            else:
                pool.submit(self.movement, "receive", product, 1 + n % 5)
            n += 1
            next_at += interval
            time.sleep(max(0.0, next_at - now()))
        return n

    # ---- background readers ---------------------------------------------
    def read_reports(self):
        i = 0
        while not self.stop.is_set():
            if i % 10 == 9:
                endpoint, path = "export.csv", "/api/v1/products/export.csv"
            else:
                endpoint, path = "transactions", "/api/v1/transactions?limit=20"
            outcome, _ = call("GET", self.api + path, token=self.token)
            with self.lock:
                self.reports[(self.phase(now()), endpoint, outcome)] += 1
            i += 1
            time.sleep(0.2)

    def poll_ready(self):
        last = {}
        while not self.stop.is_set():
            for url in self.args.ready:
                outcome, _ = call("GET", url, timeout=5)
                with self.lock:
                    self.ready[(self.phase(now()), url.split(":")[-1].split("/")[0], outcome)] += 1
                if last.get(url) != outcome:
                    say(f"/ready on :{url.split(':')[-1].split('/')[0]} -> {outcome}")
                    last[url] = outcome
            time.sleep(0.25)

    # ---- the drill -------------------------------------------------------
    def run(self):
        self.setup()
        readers = [threading.Thread(target=self.read_reports, daemon=True),
                   threading.Thread(target=self.poll_ready, daemon=True)]
        for r in readers:
            r.start()
        with ThreadPoolExecutor(max_workers=64) as pool:
            say(f"offering {self.args.rate} movements/s for {self.args.before}s")
            self.offer(pool, self.args.before)
            old = self.leader()
            if old is None:
                sys.exit("no leader before the kill")
            with open(os.path.join(old["data"], "postmaster.pid")) as f:
                pid = int(f.readline())
            self.old = old
            self.t_kill = now()
            os.kill(pid, signal.SIGKILL)
            say(f"SIGKILL to {old['name']}'s postmaster (pid {pid}); writes go on being offered")
            watcher = threading.Thread(target=self.watch_leader, daemon=True)
            watcher.start()
            # Offer until the new leader has taken writes for --after seconds (max 90 s of outage).
            while True:
                self.offer(pool, 0.5)
                t = self.t_first_ack_after_kill
                if t is not None and now() - t >= self.args.after:
                    break
                if t is None and now() - self.t_kill > 90:
                    say("no write acknowledged 90 s after the kill")
                    break
        self.stop.set()
        for r in readers:
            r.join(timeout=CLIENT_TIMEOUT + 1)
        self.retry_unanswered()
        self.wait_rejoin()
        ok = self.verify()
        self.report()
        return ok

    def watch_leader(self):
        while self.t_leader is None and now() - self.t_kill < 120:
            n = self.leader()
            if n is not None and n is not self.old:
                self.t_leader = now()
                say(f"{n['name']} is the new leader ({self.t_leader - self.t_kill:.1f}s after the kill)")
            time.sleep(0.1)

    def retry_unanswered(self):
        pending = [k for k, m in self.movements.items() if m["ids"] is None]
        say(f"{len(pending)} movements without a 201: retrying each with its own key")
        deadline = now() + 60
        while pending and now() < deadline:
            pending = [k for k in pending if self.attempt(k) != "201"]
            if pending:
                time.sleep(0.5)
        self.unanswered = pending

    def wait_rejoin(self):
        say(f"waiting for {self.old['name']} to rejoin as the synchronous standby")
        deadline = now() + 120
        while now() < deadline:
            if self.rest_ok(self.old, "/replica") and self.rest_ok(self.old, "/sync"):
                self.t_rejoin = now()
                say(f"{self.old['name']} is a synchronous standby again "
                    f"({self.t_rejoin - self.t_kill:.1f}s after the kill)")
                return
            time.sleep(0.2)
        self.t_rejoin = None
        say(f"{self.old['name']} did not rejoin within 120 s")

    def verify(self):
        ok = True
        acked = {k: m for k, m in self.movements.items() if m["ids"] is not None}
        leader = self.leader()
        target_lsn = None
        if leader:
            with psycopg2.connect(host="127.0.0.1", port=leader["pg"], user="postgres", dbname="postgres") as c:
                cur = c.cursor()
                cur.execute("SELECT pg_current_wal_lsn()")
                target_lsn = cur.fetchone()[0]
        for node in self.nodes:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=node["pg"], user="postgres",
                                        dbname="postgres", connect_timeout=3)
            except psycopg2.OperationalError as e:
                say(f"FAIL {node['name']}: cannot connect ({str(e).strip()})")
                ok = False
                continue
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute("SELECT pg_is_in_recovery()")
            standby = cur.fetchone()[0]
            if standby and target_lsn:
                for _ in range(100):  # the standby replays up to what the leader has
                    cur.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target_lsn,))
                    if cur.fetchone()[0]:
                        break
                    time.sleep(0.1)
            cur.execute("SELECT reference, array_agg(id::text ORDER BY id) FROM stock_transactions "
                        "WHERE reference LIKE 'drill-%%' GROUP BY reference")
            ledger = {ref: sorted(ids) for ref, ids in cur.fetchall()}
            lost = [k for k, m in acked.items() if k not in ledger]
            doubled = [k for k, m in acked.items() if k in ledger and ledger[k] != m["ids"]]
            stray = [k for k in ledger if k not in acked]
            cur.execute("""SELECT count(*) FROM stock_levels l
                           WHERE l.quantity <> (SELECT COALESCE(sum(t.quantity), 0) FROM stock_transactions t
                                                WHERE t.product_id = l.product_id
                                                  AND t.warehouse_id = l.warehouse_id)""")
            mismatched = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM stock_levels")
            levels = cur.fetchone()[0]
            role = "standby" if standby else "leader"
            say(f"{node['name']} ({role}): {len(ledger)} drill movements in the ledger, "
                f"{len(lost)} acknowledged but missing, {len(doubled)} doubled or different, "
                f"{len(stray)} never acknowledged; level != sum(ledger) in {mismatched} of {levels} levels")
            if lost or doubled or stray or mismatched:
                ok = False
                for k in (lost + doubled + stray)[:5]:
                    say(f"  e.g. {k}: acknowledged {acked.get(k, {}).get('ids')} ledger {ledger.get(k)}")
            conn.close()
        mismatch = [k for k, m in self.movements.items() if "mismatch" in m]
        if mismatch:
            say(f"FAIL {len(mismatch)} retries answered other ledger rows than their first 201")
            ok = False
        if self.unanswered:
            say(f"FAIL {len(self.unanswered)} movements never got a 201 after retries")
            ok = False
        if self.t_rejoin is None:
            ok = False
        bad = [(what, o) for what, counter in (("movement", self.first), ("retry", self.retried))
               for o in counter if o.startswith("5") and o != "503 problem"
               or o in ("timeout", "conn-error")]
        bad += [("report", k[2]) for k in self.reports
                if k[2].startswith("5") and k[2] != "503 problem" or k[2] in ("timeout", "conn-error")]
        bad += [("ready", k[2]) for k in self.ready if k[2].startswith("500") or k[2] in ("timeout", "conn-error")]
        if bad:
            say(f"FAIL answers that must never happen: {sorted(set(bad))}")
            ok = False
        return ok

    def report(self):
        acks = sorted(self.acks)
        gaps = [b - a for a, b in zip(acks, acks[1:])]
        longest = max(gaps) if gaps else float("nan")
        print()
        print("=== failover drill ===")
        print(f"movements offered: {len(self.movements)} "
              f"({len([m for m in self.movements.values() if m['ids']])} acknowledged)")
        print(f"first attempts:    {dict(sorted(self.first.items()))}")
        print(f"retries:           {dict(sorted(self.retried.items()))}")
        if self.t_leader:
            print(f"new leader:        {self.t_leader - self.t_kill:.1f} s after the kill (Patroni REST)")
        if self.t_first_ack_after_kill:
            print(f"seconds without writes: {self.t_first_ack_after_kill - self.t_kill:.1f} "
                  f"(kill -> first acknowledged write); longest gap between acknowledgements {longest:.1f} s")
        if getattr(self, "t_rejoin", None):
            print(f"old leader back as synchronous standby: {self.t_rejoin - self.t_kill:.1f} s after the kill")
        for name, counter in (("reports", self.reports), ("/ready", self.ready)):
            print(f"{name} by phase:")
            for phase in ("before", "outage", "after"):
                row = {f"{k[1]} {k[2]}": v for k, v in sorted(counter.items()) if k[0] == phase}
                print(f"  {phase:7} {row}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--ready", action="append", required=True)
    p.add_argument("--node", action="append", required=True, help="name,pg_port,rest_port,data_dir")
    p.add_argument("--admin", required=True)
    p.add_argument("--rate", type=float, default=20)
    p.add_argument("--before", type=float, default=8)
    p.add_argument("--after", type=float, default=8)
    args = p.parse_args()
    ok = Drill(args).run()
    print("\nDRILL " + ("PASSED" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
