"""The shop's orders. THIS is the place to call your real order system.

The template ships a small SQLite table so that the demo answers truthfully: it is created and
seeded from ``orders.csv`` (beside this file) on first use. A real shop replaces ``find`` with a call
to its order system (an HTTP API, its database); nothing else in the actions needs to change.

Where the table lives: ``SEAMLINE_ORDERS_DB`` if set, else ``orders.db`` in ``SEAMLINE_DATA_DIR`` if set,
else in the data folder (``[storage] data_dir`` of config/seamline.toml, ``var`` by default) of the bot
project this actions/ folder is in, or else of the one found from the working directory. Never beside
this file: installed with Seamline, it is inside site-packages, which is not the shop's data.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sqlite3
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

SEED = Path(__file__).with_name("orders.csv")
STATUSES = ("processing", "in_transit", "delivered")


@dataclass(frozen=True)
class Order:
    number: str
    status: str  # one of STATUSES
    carrier: str | None = None
    delivery_date: date | None = None  # expected (in transit) or done (delivered)


def find(number: str) -> Order | None:
    """The order with this number, or None when the shop has none."""
    with contextlib.closing(_connect()) as conn:
        row = conn.execute(
            "SELECT number, status, carrier, delivery_date FROM orders WHERE number = ?", (number.strip(),)
        ).fetchone()
    if row is None:
        return None
    number, status, carrier, delivery = row
    return Order(number, status, carrier or None, date.fromisoformat(delivery) if delivery else None)


def database_path(env: dict[str, str] | None = None, cwd: Path | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    if env.get("SEAMLINE_ORDERS_DB"):
        return Path(env["SEAMLINE_ORDERS_DB"])
    if env.get("SEAMLINE_DATA_DIR"):
        return Path(env["SEAMLINE_DATA_DIR"]) / "orders.db"
    start = (cwd or Path.cwd()).resolve()
    for folder in (Path(__file__).resolve().parents[1], start, *start.parents):
        settings = folder / "config" / "seamline.toml"
        if settings.is_file():
            data_dir = Path(
                tomllib.loads(settings.read_text(encoding="utf-8")).get("storage", {}).get("data_dir", "var")
            )
            return (data_dir if data_dir.is_absolute() else folder / data_dir) / "orders.db"
    return start / "var" / "orders.db"


def _connect() -> sqlite3.Connection:
    path = database_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    with conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS orders (number TEXT PRIMARY KEY, status TEXT NOT NULL, carrier TEXT,"
            " delivery_date TEXT)"
        )
        if conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 0:
            conn.executemany("INSERT OR IGNORE INTO orders VALUES (?, ?, ?, ?)", _seed())
    return conn


def _seed() -> list[tuple[str, str, str | None, str | None]]:
    """The demo's orders, their dates relative to the day the table is made (a delivery is always
    a couple of days away, whenever the demo is tried)."""
    today = date.today()
    with SEED.open(encoding="utf-8", newline="") as file:
        return [
            (
                row["number"],
                row["status"],
                row["carrier"] or None,
                (today + timedelta(days=int(row["days"]))).isoformat() if row["days"] else None,
            )
            for row in csv.DictReader(file)
        ]
