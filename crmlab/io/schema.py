"""The canonical CRM data model: five tables, each column's type, meaning and whether it is required.

``docs/data-model.md`` is the readable form of these specs; ``tests/test_schema.py`` checks
that the two agree, so the documentation cannot drift from the code.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: Message channels an own-brand shop sends through.
CHANNELS = ("app_push", "web_push", "sms", "lms", "kakao_alimtalk", "kakao_friendtalk", "email", "in_app")

#: Channels known to the open registry (crmlab.io.sources.channels.KNOWN), listed in the docs.
_REGISTERED = ("app_push", "push", "ios_push", "android_push", "web_push", "email", "in_app", "sms", "lms",
               "mms", "kakao_alimtalk", "kakao_friendtalk", "line")

#: Standard event names. Other names are allowed (free-form) and pass through untouched.
STANDARD_EVENTS = ("page_view", "product_view", "search", "add_to_cart", "remove_from_cart",
                   "begin_checkout", "purchase")

#: Time zone in which naive times are read, unless a function is given ``tz=``.
DEFAULT_TZ = "Asia/Seoul"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # id | string | time | number | integer | bool
    required: bool
    meaning: str
    nonnegative: bool = False
    allowed: tuple[str, ...] | None = None
    vocabulary: str | None = None  # an open vocabulary: "channels" = crmlab.io.sources.channels.names()


@dataclass(frozen=True)
class TableSpec:
    name: str
    meaning: str
    columns: tuple[Column, ...]
    unique: tuple[str, ...] = field(default=())  # columns that together identify a row
    time_column: str | None = None  # checked against ``as_of``

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def _consent_columns() -> tuple[Column, ...]:
    cols = []
    for ch in CHANNELS:
        cols.append(Column(f"consent_{ch}", "bool", False,
                           f"Marketing (advertising) consent for {ch}; missing means no consent."))
        cols.append(Column(f"consent_{ch}_time", "time", False,
                           f"When the {ch} consent was given or last reconfirmed."))
    return tuple(cols)


CUSTOMERS = TableSpec(
    "customers", "One row per customer.",
    (
        Column("user_id", "id", True, "Customer identifier, shared by every table."),
        Column("signup_time", "time", True, "When the customer signed up."),
        Column("gender", "string", False, "Self-reported gender."),
        Column("age_band", "string", False, "Age band such as '20s'."),
        Column("region", "string", False, "Region (for example a province)."),
        *_consent_columns(),
        Column("night_ad_consent", "bool", False,
               "Separate consent to advertising sent 21:00-08:00 (Korean Information and "
               "Communications Network Act, art. 50(3))."),
        Column("night_ad_consent_time", "time", False, "When the night-time consent was given."),
    ),
    unique=("user_id",),
    time_column="signup_time",
)

EVENTS = TableSpec(
    "events", "One row per behavioural event (web or app).",
    (
        Column("user_id", "id", True, "Who did it."),
        Column("time", "time", True, "When it happened."),
        Column("event", "string", True,
               "Event name: " + ", ".join(STANDARD_EVENTS) + ", or any other (free-form)."),
        Column("session_id", "id", False, "Session identifier; derived from 30 minutes of inactivity when missing."),
        Column("product_id", "id", False, "Product viewed, added or bought."),
        Column("category", "string", False, "Product category."),
        Column("price", "number", False, "Unit price (shop currency).", nonnegative=True),
        Column("source", "string", False, "UTM source (for example kakao, naver, google)."),
        Column("medium", "string", False, "UTM medium (for example crm, cpc, organic)."),
        Column("campaign", "string", False, "UTM campaign."),
        Column("device", "string", False, "Device class: mobile, desktop, app."),
    ),
    time_column="time",
)

ORDERS = TableSpec(
    "orders", "One row per order.",
    (
        Column("order_id", "id", True, "Order identifier, unique."),
        Column("user_id", "id", True, "Buyer."),
        Column("time", "time", True, "When the order was placed."),
        Column("revenue", "number", True, "Amount paid, after discounts (shop currency).", nonnegative=True),
        Column("discount", "number", False, "Discount given on the order.", nonnegative=True),
        Column("coupon", "string", False, "Coupon code used, if any."),
        Column("items", "integer", False, "Number of items.", nonnegative=True),
        Column("category", "string", False, "Main product category of the order."),
    ),
    unique=("order_id",),
    time_column="time",
)

MESSAGES = TableSpec(
    "messages", "One row per message sent to one user.",
    (
        Column("message_id", "id", True, "Message identifier, unique."),
        Column("user_id", "id", True, "Recipient."),
        Column("campaign", "string", True, "Campaign the message belongs to."),
        Column("channel", "string", True, "Channel: a registered channel (crmlab.io.sources.channels: "
               + ", ".join(_REGISTERED) + ") or one declared in shop.yaml.", vocabulary="channels"),
        Column("variant", "string", False, "Copy or creative variant (for A/B tests of messages)."),
        Column("is_ad", "bool", True, "Advertising message (true) or informational (false)."),
        Column("text", "string", False, "Message text, for compliance checks."),
        Column("sent_time", "time", True, "When it was sent."),
        Column("delivered_time", "time", False, "When it was delivered; null if not delivered or unknown."),
        Column("opened_time", "time", False, "First open; null where the channel has no open signal (SMS, LMS, Kakao)."),
        Column("clicked_time", "time", False, "First click; null if none. A click rate divides by the deliveries "
               "on channels that report clicks: the registry's, and receipt-only channels (SMS with tracked links) "
               "on which the data hold clicks; Kakao receipts without a click are left out of the denominator."),
        Column("unsubscribed_time", "time", False, "Opt-out caused by this message; null if none."),
        Column("cost", "number", False, "Cost of sending this message (shop currency).", nonnegative=True),
    ),
    unique=("message_id",),
    time_column="sent_time",
)

ASSIGNMENTS = TableSpec(
    "assignments", "One row per user per experiment: which arm the user was randomised to.",
    (
        Column("experiment", "string", True, "Experiment or campaign name."),
        Column("user_id", "id", True, "Randomised user."),
        Column("variant", "string", True, "Arm; control and holdout groups are arms too."),
        Column("assigned_time", "time", True, "When the user was assigned (a control user's virtual send time)."),
    ),
    unique=("experiment", "user_id"),
    time_column="assigned_time",
)

TABLES: dict[str, TableSpec] = {t.name: t for t in (CUSTOMERS, EVENTS, ORDERS, MESSAGES, ASSIGNMENTS)}


def spec(table: str) -> TableSpec:
    try:
        return TABLES[table]
    except KeyError:
        raise KeyError(f"unknown table '{table}'; canonical tables are {sorted(TABLES)}") from None


def to_markdown() -> str:
    """The data model as Markdown: ``docs/data-model.md`` is this text (a test keeps them equal)."""
    lines = ["# The CRM data model", "",
             "crmlab works on five canonical tables. Every public function accepts each of them as a",
             "pandas DataFrame, a path (Parquet file or folder, CSV file or folder of `<table>.csv`,",
             "`file.duckdb::table`), an Ibis table of any backend, or a live source: an Ibis connection URL",
             "(`postgres://user@host/db`, `duckdb:///path/shop.duckdb`, `pyspark:///parquet/folder` or",
             "`pyspark://catalog_db`: see [bring-your-own-data.md](bring-your-own-data.md)), an Ibis connection or a PySpark",
             "session, read at the table named after the canonical table. It validates them first",
             "(`crmlab.canonical`). Bad input raises `crmlab.DataError` naming the table, the column, the",
             "rule broken, how many rows break it and up to five example rows.", "",
             "Types: *id* is text (integer ids are read as their decimal text; text ids are put in Unicode",
             "NFC with zero-width characters removed, so they match across tables); *time* is a timestamp —",
             f"naive times are read in the shop's zone (default `{DEFAULT_TZ}`, `tz=` on every function),",
             "times with a zone or a UTC offset are converted to it, text times must be ISO 8601 or match a",
             "declared `date_format` (day/month text such as `05/01/2026` without one is ambiguous and",
             "raises); *number* is a float, *integer* a whole number, *bool* true/false. Optional columns",
             "that are absent are added as nulls. Extra columns are kept and ignored. NaN is null on every",
             "backend.", "",
             "Rules checked: required columns present; types; times parseable and unambiguous; required",
             "values not null (nor NaN); amounts finite and not negative, their sum finite; channel among",
             "the known channels; on channels that report delivery a click implies a delivery (where the",
             "table reports deliveries at all); ids unique; with `as_of=`, no row after `as_of` (analysis",
             "functions instead exclude such rows and report how many). An experiment's outcomes table",
             "has one row per user and numeric or true/false metrics.", "",
             "CSV files may be UTF-8 (with or without a byte-order mark) or CP949; other encodings raise.",
             "Live sources run the same Ibis code on PostgreSQL, DuckDB and Spark (tested) and on BigQuery",
             "(`bigquery://project/dataset`) and Snowflake (`snowflake://user:password@account/database/schema`),",
             "with the engine's convention that times are the shop's naive local wall-clock times.", ""]
    for t in TABLES.values():
        lines += [f"## {t.name}", "", t.meaning + (f" Unique: `{', '.join(t.unique)}`." if t.unique else ""), "",
                  "| column | type | required | meaning |", "|---|---|---|---|"]
        for c in t.columns:
            rule = " Not negative." if c.nonnegative else ""
            lines.append(f"| `{c.name}` | {c.kind} | {'yes' if c.required else 'no'} | {c.meaning}{rule} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m crmlab.io.schema > docs/data-model.md
    print(to_markdown())
