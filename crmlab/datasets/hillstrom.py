"""The MineThatData E-Mail Analytics Challenge (Kevin Hillstrom, 2008) as canonical tables.

64,000 customers who bought in the past twelve months were randomly sent a men's e-mail, a
women's e-mail, or nothing. Outcomes were tracked for two weeks: visit, conversion, spend.

The file has no times. The loader places the campaign at a nominal start
(:data:`CAMPAIGN_START`), the e-mail and the assignment at that moment, a visit event at
+3 days and an order at +7 days: inside the two-week window, so any window of at least
8 days counts every outcome once. ``outcomes`` keeps the original per-customer columns.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..io.schema import DEFAULT_TZ
from .core import ShopData, data_path

CAMPAIGN_START = "2008-03-03 10:00"
EXPERIMENT = "hillstrom_email"
CONTROL = "No E-Mail"
ARMS = ("Mens E-Mail", "Womens E-Mail", CONTROL)


def load_hillstrom(tz: str = DEFAULT_TZ) -> ShopData:
    """Hillstrom's e-mail test: 64,000 customers in arms of 21,307 (men's), 21,387 (women's)
    and 21,306 (no e-mail, the control).

    Returns customers (with the file's covariates), messages (one e-mail per mailed
    customer), assignments (experiment ``hillstrom_email``), events (one visit per visitor),
    orders (one per converter, revenue = spend) and ``outcomes`` (visit, conversion, spend).
    """
    raw = pd.read_csv(data_path("hillstrom.csv.gz"))
    start = pd.Timestamp(CAMPAIGN_START, tz=tz)
    uid = pd.Series(np.arange(1, len(raw) + 1)).astype(str).str.zfill(5).radd("h")
    customers = pd.DataFrame({
        "user_id": uid,
        # Unknown in the file; every customer had bought within the past 12 months and
        # ``newbie`` marks those new in that period, so signup is placed accordingly.
        "signup_time": np.where(raw["newbie"] == 1, start - pd.Timedelta(days=180),
                                start - pd.Timedelta(days=730)),
        "region": raw["zip_code"].replace({"Surburban": "Suburban"}),
        "recency_months": raw["recency"],
        "history_segment": raw["history_segment"],
        "history": raw["history"],
        "bought_mens": raw["mens"].astype(bool),
        "bought_womens": raw["womens"].astype(bool),
        "newbie": raw["newbie"].astype(bool),
        "purchase_channel": raw["channel"],
        "consent_email": True,
    })
    customers["signup_time"] = pd.to_datetime(customers["signup_time"]).dt.tz_convert(tz)
    mailed = raw["segment"] != CONTROL
    messages = pd.DataFrame({
        "message_id": uid[mailed].str.replace("h", "m", regex=False).values,
        "user_id": uid[mailed].values,
        "campaign": raw.loc[mailed, "segment"].values,
        "channel": "email",
        "variant": raw.loc[mailed, "segment"].values,
        "is_ad": True,
        "sent_time": start,
        "delivered_time": start,
    })
    assignments = pd.DataFrame({
        "experiment": EXPERIMENT, "user_id": uid, "variant": raw["segment"], "assigned_time": start,
    })
    outcomes = pd.DataFrame({"user_id": uid, "variant": raw["segment"], "visit": raw["visit"],
                             "conversion": raw["conversion"], "spend": raw["spend"].astype(float)})
    visited = raw["visit"] == 1
    events = pd.DataFrame({"user_id": uid[visited].values, "time": start + pd.Timedelta(days=3),
                           "event": "page_view", "source": "email", "medium": "crm"})
    conv = raw["conversion"] == 1
    orders = pd.DataFrame({"order_id": uid[conv].str.replace("h", "o", regex=False).values,
                           "user_id": uid[conv].values, "time": start + pd.Timedelta(days=7),
                           "revenue": raw.loc[conv, "spend"].astype(float).values})
    return ShopData(customers=customers, events=events, orders=orders, messages=messages,
                    assignments=assignments, outcomes=outcomes, name="hillstrom")
