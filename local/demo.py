"""Deterministic demo logs for the shop: customers (CSV), orders (JSON lines), web (combined).

The same seed and flags always write the same bytes. Like real logs, the output mixes in a
small share of malformed lines and duplicated events; the generator records what it meant to
write in ``_expected.json`` so tests can check the warehouse against intent, not against the
pipeline's own arithmetic.

Usage: ``python -m local.demo --out .local/logs --days 7 --seed 42``
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from lake.layout import LOG_FILES
from orchestration.settings import DBT_PROJECT_DIR

PRODUCTS_SEED = DBT_PROJECT_DIR / "seeds" / "products.csv"
RATES_SEED = DBT_PROJECT_DIR / "seeds" / "exchange_rates.csv"
SESSION_GAP = timedelta(minutes=30)
IP_OCTETS = [(11, 223), (0, 255), (0, 255), (1, 254)]
TLS_HELLO = "\\x16\\x03\\x01\\x00\\xa5\\x01"  # how nginx logs a TLS probe sent to an HTTP port

FIRST_NAMES = ["Ava", "Liam", "Mia", "Noah", "Emma", "Lukas", "Sofia", "Jules", "Chloé", "Oliver"]
LAST_NAMES = ["Smith", "Müller", "Dubois", "García", "O'Neil", "Jansen", "Rossi", "Brown", "Kim"]
PLACES = {
    "US": ("USD", ["Seattle", "Austin", "Washington, D.C.", "Boston"]),
    "GB": ("GBP", ["London", "Leeds", "Bristol"]),
    "DE": ("EUR", ["Berlin", "München", "Hamburg"]),
    "FR": ("EUR", ["Paris", "Lyon"]),
    "NL": ("EUR", ["Amsterdam", "Utrecht"]),
}
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
]
BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "curl/8.5.0",
]
REFERRERS = [
    "-",
    "-",
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://news.example/",
]
ASSETS = ["/static/app.css", "/static/app.js", "/favicon.ico"]


@dataclass(frozen=True)
class DemoSpec:
    """Size and shape of the demo; every field is a command-line flag."""

    start: date = date(2026, 11, 1)
    days: int = 7
    customers: int = 300
    orders_per_day: int = 120
    visits_per_day: int = 250
    malformed_rate: float = 0.005
    duplicate_rate: float = 0.005
    seed: int = 42


@dataclass
class StreamTruth:
    lines: int = 0
    valid: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)


@dataclass
class Line:
    at: datetime
    data: bytes
    valid: bool = True
    page_view: bool = False


@dataclass
class Truth:
    streams: dict[str, StreamTruth] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)
    orders: dict[str, dict[str, str | int]] = field(default_factory=dict)
    order_lines: int = 0
    page_views: int = 0
    sessions: Counter[str] = field(default_factory=Counter)
    # order id -> when it was placed: the shopper's visit ends on its confirmation page.
    checkouts: dict[str, datetime] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "streams": {
                name: {
                    "lines": t.lines,
                    "valid": t.valid,
                    "duplicates": t.duplicates,
                    "quarantined": dict(sorted(t.quarantined.items())),
                }
                for name, t in self.streams.items()
            },
            "customers": len(self.customers),
            "orders": dict(sorted(self.orders.items())),
            "order_lines": self.order_lines,
            "page_views": self.page_views,
            "sessions": dict(self.sessions),
            "converted_sessions": len(self.checkouts),
        }


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _event_id(rng: random.Random) -> str:
    raw = f"{rng.getrandbits(128):032x}"
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _csv_line(values: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode()


def _read_seed(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# --- customers -------------------------------------------------------------------------


def customer_events(spec: DemoSpec, rng: random.Random, truth: Truth) -> tuple[list[Line], dict]:
    """Sign-ups plus later profile changes, so each customer has a history."""
    window = timedelta(days=spec.days)
    start = datetime.combine(spec.start, datetime.min.time(), UTC)
    lines: list[Line] = []
    profiles: dict[str, tuple[datetime, str]] = {}  # customer_id -> (signed up at, currency)
    for number in range(1, spec.customers + 1):
        customer_id = f"C{number:06d}"
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        country = rng.choice(sorted(PLACES))
        currency, cities = PLACES[country]
        signed_up = start + window * 0.7 * rng.random()
        email = f"{first}.{last}{number}@example.com".lower().replace("'", "")
        state = [email, first, last, country, rng.choice(cities)]
        at = signed_up
        for event_type in ["signup"] + ["profile_update"] * rng.choice([0, 0, 1, 2]):
            if event_type == "profile_update":
                at = at + (start + window - at) * rng.random()
                state[4] = rng.choice(cities)  # people move; the dimension keeps history
                if rng.random() < 0.3:
                    state[0] = f"{first}.{last}.{number}@mail.example".lower().replace("'", "")
            row = [_event_id(rng), event_type, _iso(at), customer_id, *state]
            lines.append(Line(at, _csv_line(row)))
        profiles[customer_id] = (signed_up, currency)
        truth.customers.add(customer_id)
    return lines, profiles


# --- orders ----------------------------------------------------------------------------

NEXT_STEPS = {
    "placed": [("cancelled", 0.06, (10, 180)), ("paid", 0.92, (1, 30))],
    "paid": [("shipped", 0.9, (240, 2880))],
    "shipped": [("refunded", 0.05, (1440, 7200))],
}


def _lifecycle(
    rng: random.Random, placed_at: datetime, end: datetime
) -> list[tuple[str, datetime]]:
    events = [("placed", placed_at)]
    while events[-1][0] in NEXT_STEPS:
        state, at = events[-1]
        roll, acc = rng.random(), 0.0
        for next_state, chance, (low, high) in NEXT_STEPS[state]:
            acc += chance
            if roll < acc:
                next_at = at + timedelta(minutes=rng.uniform(low, high))
                if next_at >= end:
                    return events
                events.append((next_state, next_at))
                break
        else:
            return events
    return events


def _rate(rates: list[dict[str, str]], currency: str, at: datetime) -> Decimal:
    """US dollars per unit of ``currency`` on ``at``'s day: the newest rate in effect."""
    day = at.date().isoformat()
    return next(
        Decimal(r["usd_per_unit"])
        for r in rates
        if r["currency_code"] == currency and r["valid_from"] <= day
    )


def order_events(spec: DemoSpec, rng: random.Random, truth: Truth, profiles: dict) -> list[Line]:
    products = _read_seed(PRODUCTS_SEED)
    rates = sorted(_read_seed(RATES_SEED), key=lambda r: r["valid_from"], reverse=True)
    start = datetime.combine(spec.start, datetime.min.time(), UTC)
    end = start + timedelta(days=spec.days)
    customer_ids = sorted(profiles)
    lines: list[Line] = []
    for day in range(spec.days):
        for _ in range(spec.orders_per_day):
            placed_at = start + timedelta(days=day, seconds=rng.uniform(0, 86_399))
            customer_id = rng.choice(customer_ids)
            signed_up, currency = profiles[customer_id]
            if signed_up >= placed_at:
                continue  # only customers who already exist can order
            order_id = f"O{len(truth.orders) + 1:07d}"
            order_lines: list[dict[str, Any]] = []
            for number, product in enumerate(rng.sample(products, rng.randint(1, 4)), start=1):
                price = (
                    Decimal(product["list_price_usd"]) / _rate(rates, currency, placed_at)
                ).quantize(Decimal("0.01"))
                order_lines.append(
                    {
                        "line_number": number,
                        "product_id": product["product_id"],
                        "quantity": rng.randint(1, 3),
                        "unit_price": float(price),
                    }
                )
            total = sum(
                (Decimal(str(ln["unit_price"])) * ln["quantity"] for ln in order_lines), Decimal(0)
            )
            events = _lifecycle(rng, placed_at, end)
            for event_type, at in events:
                payload = {
                    "event_id": _event_id(rng),
                    "event_type": event_type,
                    "event_at": _iso(at),
                    "order_id": order_id,
                    "customer_id": customer_id,
                    "currency": currency,
                    "lines": order_lines if event_type == "placed" else [],
                }
                lines.append(Line(at, json.dumps(payload, ensure_ascii=False).encode() + b"\n"))
            truth.orders[order_id] = {
                "customer_id": customer_id,
                "status": events[-1][0],
                "currency": currency,
                "total": str(total),
                "lines": len(order_lines),
            }
            truth.order_lines += len(order_lines)
            truth.checkouts[order_id] = placed_at
    return lines


# --- web -------------------------------------------------------------------------------

# The shop's order confirmation page; the web sessions link to the order through it.
CONFIRMATION_PATH = "/checkout/confirmation?order_id="


def _clf(ip: str, at: datetime, request: str, status: int, size: str, ref: str, ua: str) -> bytes:
    stamp = at.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - - [{stamp}] "{request}" {status} {size} "{ref}" "{ua}"\n'.encode()


def _visit(
    rng: random.Random, ip: str, ua: str, begin: datetime, is_bot: bool
) -> tuple[list[Line], int]:
    """One visit: page views close together, each followed by a few asset requests."""
    at, referrer, lines, page_views = begin, rng.choice(REFERRERS), [], 0
    pages = rng.randint(3, 20) if is_bot else rng.randint(1, 8)
    for _ in range(pages):
        path = rng.choice(
            [
                "/",
                "/cart",
                "/search?q=boots",
                f"/products/P{rng.randint(1, 20):03d}",
                f"/category/{rng.choice(['footwear', 'outerwear', 'bags', 'gear'])}",
            ]
        )
        status = 404 if rng.random() < 0.03 else 200
        if status == 404:
            path = f"/products/P{rng.randint(900, 999)}"
        lines.append(
            Line(
                at,
                _clf(
                    ip,
                    at,
                    f"GET {path} HTTP/1.1",
                    status,
                    str(rng.randint(2_000, 40_000)),
                    referrer,
                    ua,
                ),
                page_view=status == 200,
            )
        )
        page_views += status == 200
        if not is_bot:
            for asset in rng.sample(ASSETS, rng.randint(0, 2)):
                asset_at = at + timedelta(seconds=rng.randint(0, 2))
                lines.append(
                    Line(
                        asset_at,
                        _clf(
                            ip,
                            asset_at,
                            f"GET {asset} HTTP/2.0",
                            304,
                            "-",
                            f"https://shop.example{path}",
                            ua,
                        ),
                    )
                )
        referrer = f"https://shop.example{path}"
        at += timedelta(seconds=rng.uniform(1, 60) if is_bot else rng.uniform(5, 600))
    return lines, page_views


def web_events(spec: DemoSpec, rng: random.Random, truth: Truth) -> list[Line]:
    start = datetime.combine(spec.start, datetime.min.time(), UTC)
    visitors = [
        (
            ".".join(str(rng.randint(low, high)) for low, high in IP_OCTETS),
            rng.choice(BOTS) if rng.random() < 0.08 else rng.choice(BROWSERS),
        )
        for _ in range(max(1, spec.visits_per_day * spec.days // 3))
    ]
    planned: dict[tuple[str, str], list[datetime]] = {}
    for day in range(spec.days):
        for _ in range(spec.visits_per_day):
            visitor = rng.choice(visitors)
            begin = start + timedelta(days=day, seconds=rng.uniform(0, 86_399))
            planned.setdefault(visitor, []).append(begin)
    lines: list[Line] = []
    for (ip, ua), begins in planned.items():
        last_seen: datetime | None = None
        for begin in sorted(begins):
            # Keep visits of one visitor more than 30 minutes apart: each is then one session.
            if last_seen is not None and begin - last_seen <= SESSION_GAP + timedelta(minutes=1):
                continue
            is_bot = ua in BOTS
            visit, page_views = _visit(rng, ip, ua, begin, is_bot)
            last_seen = max(line.at for line in visit)
            lines.extend(visit)
            truth.page_views += page_views
            truth.sessions["bot" if is_bot else "human"] += 1
    for order_id, placed_at in sorted(truth.checkouts.items()):
        lines.extend(_checkout(rng, order_id, placed_at))
        truth.page_views += 3
        truth.sessions["human"] += 1
    return lines


def _checkout(rng: random.Random, order_id: str, placed_at: datetime) -> list[Line]:
    """The visit that placed an order, from a visitor of its own: cart, checkout, and the
    confirmation page that carries the order id (docs/data-contract.md)."""
    ip = ".".join(str(rng.randint(low, high)) for low, high in IP_OCTETS)
    ua, steps = rng.choice(BROWSERS), ["/cart", "/checkout"]
    lines, referrer = [], rng.choice(REFERRERS)
    for minutes, path in zip((4, 2), steps, strict=True):
        at = placed_at - timedelta(minutes=minutes)
        lines.append(Line(at, _clf(ip, at, f"GET {path} HTTP/1.1", 200, "5120", referrer, ua),
                          page_view=True))  # fmt: skip
        referrer = f"https://shop.example{path}"
    confirmation = f"GET {CONFIRMATION_PATH}{order_id} HTTP/1.1"
    lines.append(Line(placed_at, _clf(ip, placed_at, confirmation, 200, "4096", referrer, ua),
                      page_view=True))  # fmt: skip
    return lines


# --- malformed lines and duplicates ------------------------------------------------------


def _pick(nth: int, kinds: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    # In turn rather than at random, so even a tiny demo carries every kind of bad line.
    return kinds[nth % len(kinds)]


def _malformed(stream: str, rng: random.Random, near: Line, nth: int) -> tuple[str, bytes]:
    """The ``nth`` bad line: kinds real logs contain, in turn, with the reason each must get."""
    at = near.at
    if stream == "customers":
        return _pick(
            nth,
            [
                ("wrong_column_count", f"{_event_id(rng)},signup,{_iso(at)},C999999\n".encode()),
                (
                    "invalid_timestamp",
                    _csv_line(
                        [
                            _event_id(rng),
                            "signup",
                            "yesterday",
                            "C999998",
                            "x@example.com",
                            "X",
                            "Y",
                            "US",
                            "Austin",
                        ]
                    ),
                ),
                (
                    "invalid_value",
                    _csv_line(
                        [
                            _event_id(rng),
                            "deleted",
                            _iso(at),
                            "C999997",
                            "x@example.com",
                            "X",
                            "Y",
                            "US",
                            "Austin",
                        ]
                    ),
                ),
            ],
        )
    if stream == "orders":
        good = json.dumps(
            {
                "event_id": _event_id(rng),
                "event_type": "paid",
                "event_at": _iso(at),
                "order_id": "O9999999",
                "customer_id": "C000001",
                "currency": "EUR",
                "lines": [],
            }
        )
        return _pick(
            nth,
            [
                ("unparseable", good[: len(good) // 2].encode() + b"\n"),
                ("missing_field", good.replace('"order_id": "O9999999", ', "").encode() + b"\n"),
                (
                    "invalid_timestamp",
                    good.replace(_iso(at), "2026-13-45T99:00:00Z").encode() + b"\n",
                ),
            ],
        )
    stamp = at.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return _pick(
        nth,
        [
            ("unparseable", b"upstream timed out while reading response header\n"),
            (
                "malformed_request",
                f'45.9.20.1 - - [{stamp}] "{TLS_HELLO}" 400 157 "-" "-"\n'.encode(),
            ),
            (
                "invalid_encoding",
                f'45.9.20.2 - - [{stamp}] "GET /search?q='.encode()
                + b"\xff\xfe"
                + b' HTTP/1.1" 200 '
                b'512 "-" "Mozilla/5.0"\n',
            ),
        ],
    )


def interleave(
    stream: str, events: list[Line], spec: DemoSpec, rng: random.Random, truth: Truth
) -> list[bytes]:
    """Order events by time and mix in malformed lines and lines written twice."""
    counts = truth.streams[stream]
    out: list[bytes] = []
    for line in sorted(events, key=lambda line: (line.at, line.data)):
        out.append(line.data)
        counts.valid += 1
        if rng.random() < spec.duplicate_rate:
            out.append(line.data)
            if stream == "web":
                # An access log line carries no id: the same line again is a real request
                # (a client polling in the same second), not a resend.
                counts.valid += 1
                truth.page_views += line.page_view
            else:
                counts.duplicates += 1  # the same event id again: the app resent it
        if rng.random() < spec.malformed_rate:
            reason, data = _malformed(stream, rng, line, sum(counts.quarantined.values()))
            out.append(data)
            counts.quarantined[reason] += 1
    counts.lines = len(out)
    return out


def generate(spec: DemoSpec, out_dir: Path) -> Truth:
    """Write the three logs for ``spec`` into ``out_dir`` and return what they contain."""
    rng = random.Random(spec.seed)
    truth = Truth()
    customers, profiles = customer_events(spec, rng, truth)
    events = {
        "customers": customers,
        "orders": order_events(spec, rng, truth, profiles),
        "web": web_events(spec, rng, truth),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for stream, lines in events.items():
        truth.streams[stream] = StreamTruth()
        data = interleave(stream, lines, spec, rng, truth)
        (out_dir / LOG_FILES[stream]).write_bytes(b"".join(data))
    (out_dir / "_expected.json").write_text(json.dumps(truth.to_json(), indent=2) + "\n")
    return truth


def parse_args(argv: list[str]) -> tuple[DemoSpec, Path]:
    defaults = DemoSpec()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the log files")
    parser.add_argument("--start", type=date.fromisoformat, default=defaults.start)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument("--orders-per-day", type=int, default=defaults.orders_per_day)
    parser.add_argument("--visits-per-day", type=int, default=defaults.visits_per_day)
    parser.add_argument("--malformed-rate", type=float, default=defaults.malformed_rate)
    parser.add_argument("--duplicate-rate", type=float, default=defaults.duplicate_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    if args.days < 1 or args.customers < 1:
        parser.error("--days and --customers must be at least 1")
    spec = DemoSpec(
        args.start,
        args.days,
        args.customers,
        args.orders_per_day,
        args.visits_per_day,
        args.malformed_rate,
        args.duplicate_rate,
        args.seed,
    )
    return spec, args.out


def main(argv: list[str] | None = None) -> int:
    spec, out_dir = parse_args(sys.argv[1:] if argv is None else argv)
    truth = generate(spec, out_dir)
    for stream, counts in truth.streams.items():
        print(f"{stream}: {counts.lines} lines -> {out_dir / LOG_FILES[stream]}")
    return 0


def scaled(scale: float, days: int = DemoSpec.days, seed: int = DemoSpec.seed) -> DemoSpec:
    """The default demo with its volumes multiplied by ``scale``."""
    base = DemoSpec()
    return replace(
        base,
        days=days,
        seed=seed,
        customers=max(1, int(base.customers * scale)),
        orders_per_day=max(1, int(base.orders_per_day * scale)),
        visits_per_day=max(1, int(base.visits_per_day * scale)),
    )


def log_files(folder: Path) -> dict[str, list[Path]]:
    """Each stream's log file in a folder the generator wrote."""
    return {stream: [folder / name] for stream, name in LOG_FILES.items()}


if __name__ == "__main__":
    raise SystemExit(main())
