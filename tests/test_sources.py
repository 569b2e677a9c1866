"""crmlab.io.sources: vendor exports -> canonical tables -> `crmlab check` -> the weekly report.

Expected figures are computed by hand from the fixtures (tests/fixtures/sources/README.md lists
each file's rows); every adapter's ledger must account for every input row.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from crmlab import DataError, canonical
from crmlab.__main__ import main
from crmlab.io.sources import build, channels, validate, write
from crmlab.io.sources.mapping import MappingError, load

FIX = Path(__file__).parent / "fixtures" / "sources"
SHOP, KR = FIX / "shop", FIX / "kr"
WEEK = "2026-W47"
SALT = "test-salt-not-for-production"
#: Every e-mail address and phone number in the fixtures, in each spelling they use.
PII = ["minji.kim@example.com", "Minji.Kim@example.com", "jun.park@example.com", "seoyeon.lee@example.com",
       "hyun.choi@example.com", "alex.smith@example.com", "soo.han@example.com", "2000-1001", "20001001",
       "2000-1002", "20001002", "20001003", "2000-1003", "2000-1004", "2000-1009", "김민지", "박준"]


@pytest.fixture(autouse=True)
def salt(monkeypatch):
    monkeypatch.setenv("CRMLAB_SALT", SALT)
    channels._reset()
    yield
    channels._reset()


def mapping_file(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "shop.yaml"
    f.write_text("currency: KRW\ntimezone: Asia/Seoul\nsalt_env: CRMLAB_SALT\n" + body, encoding="utf-8")
    return f


def one(tmp_path, body: str, root=None):
    """The single output of a one-source mapping."""
    built = build(load(mapping_file(tmp_path, body), root=root))
    assert all(v is None for v in validate(built).values()), validate(built)
    return built.outputs[0]


def assert_no_row_lost(out):
    for table, lg in out.ledgers.items():
        assert lg.rows_in == len(out.tables[table]) + lg.accounted, (table, lg)
        assert all(r.islower() and " " not in r for r in [*lg.excluded, *lg.folded, *lg.notes])


def no_pii(text: str) -> None:
    found = [p for p in PII if p in text]
    assert not found, f"personal data leaked: {found}"


# ----------------------------------------------------------------------------------------- GA4
def test_ga4_events_sessions_utm_and_orders(tmp_path):
    out = one(tmp_path, f"sources:\n  web: {{adapter: ga4, path: '{SHOP / 'ga4'}'}}\n")
    ev, orders = out.tables["events"], out.tables["orders"]
    assert len(ev) == 22  # 14 + 8 rows in the two daily files: one event each
    assert ev["session_id"].nunique() == 6 and ev["session_id"].notna().all()
    # the view_item without ga_session_id (19:10) joins the session of the add_to_cart 2 minutes later
    assert ev.loc[17, "session_id"] == ev.loc[18, "session_id"] == "3333333333.1763424000:1763719920"
    assert (ev["event"] == "product_view").sum() == 5 and "view_item" not in set(ev["event"])
    assert (ev["event"] == "search").sum() == 1  # view_search_results
    first = ev[ev["session_id"] == "1111111111.1763251200:1763254800"]
    assert len(first) == 6 and set(first["source"]) == {"braze"} and set(first["campaign"]) == {"winter_sale"}
    assert ev.loc[ev["user_id"] == "C1001", "time"].min() == pd.Timestamp("2026-11-16 10:00", tz="Asia/Seoul")
    # 4 purchase events: T-9001, T-9002 twice (reload), '(not set)'
    assert orders.set_index("order_id")["revenue"].to_dict() == {"T-9001": 28000.0, "T-9002": 89000.0}
    lg = out.ledgers["orders"]
    assert (lg.rows_in, dict(lg.excluded)) == (4, {"duplicate_purchase_event": 1, "purchase_without_transaction_id": 1})
    assert out.ledgers["events"].notes["missing_ga_session_id"] == 1
    assert_no_row_lost(out)
    canonical(ev, "events")


def test_ga4_events_with_several_items(tmp_path):
    """GA4's ``items`` is a REPEATED RECORD. Hand counts from ga4_baskets.json: 6 events, one row
    each; items after the first: view_item 1 + add_to_cart 1 + begin_checkout 2 + the purchases
    2 + 1 = 7, on 5 events. T-9100: 68,000 (purchase_revenue), 4 items, main category 'winter'
    (gloves 2 x 14,000 = 28,000 > the scarf's 25,000, listed first). T-9101 has neither
    purchase_revenue nor value nor total_item_quantity: 45,000 + 25,000 = 70,000, 3 + 1 items,
    'kitchen'. The same export as nested Parquet maps to the same tables."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = [json.loads(ln) for ln in (FIX / "ga4_baskets.json").read_text(encoding="utf-8").splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "events_20261119.parquet")
    outs = [one(tmp_path, f"sources:\n  web: {{adapter: ga4, path: '{path}'}}\n")
            for path in (FIX / "ga4_baskets.json", tmp_path / "events_20261119.parquet")]
    for out in outs:
        ev, orders = out.tables["events"], out.tables["orders"]
        assert ev["event"].tolist() == ["page_view", "product_view", "add_to_cart", "begin_checkout", "purchase",
                                        "purchase"]
        assert ev["product_id"].tolist()[1:] == ["SKU-110"] * 4 + ["SKU-300"]  # the first item of each
        notes = out.ledgers["events"].notes
        assert (notes["additional_items"], notes["events_with_several_items"]) == (7, 5)
        o = orders.set_index("order_id")
        assert o["revenue"].to_dict() == {"T-9100": 68000.0, "T-9101": 70000.0}
        assert o["items"].tolist() == [4, 4] and o["category"].tolist() == ["winter", "kitchen"]
        assert out.ledgers["orders"].notes["revenue_from_items"] == 1
        assert_no_row_lost(out)
    pd.testing.assert_frame_equal(outs[0].tables["orders"], outs[1].tables["orders"])
    pd.testing.assert_frame_equal(outs[0].tables["events"], outs[1].tables["events"])


def test_ga4_nested_parquet_is_flattened_in_duckdb_alike(tmp_path, monkeypatch):
    """The shop's GA4 export as nested Parquet (one file per day) goes through the DuckDB
    flattening (crmlab.io.sources.ga4.flatten_in_duckdb) and gives the NDJSON path's tables
    and ledgers: sessions, the landing UTM, duplicate and '(not set)' purchases."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from crmlab.io.sources import ga4
    (tmp_path / "ga4").mkdir()
    for f in (SHOP / "ga4").iterdir():
        rows = [json.loads(ln) for ln in f.read_text(encoding="utf-8").splitlines()]
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "ga4" / f.name.replace(".json", ".parquet"))
    calls = []
    monkeypatch.setattr(ga4, "flatten_in_duckdb", lambda *a, f=ga4.flatten_in_duckdb: calls.append(1) or f(*a))
    body = "sources:\n  web: {{adapter: ga4, path: '{}'}}\n"
    nd, pq_ = one(tmp_path, body.format(SHOP / "ga4")), one(tmp_path, body.format(tmp_path / "ga4"))
    assert calls == [1]
    for table in ("events", "orders"):
        pd.testing.assert_frame_equal(nd.tables[table], pq_.tables[table])
    pd.testing.assert_frame_equal(nd.exclusions(), pq_.exclusions())
    assert pq_.tables["events"]["session_id"].nunique() == 6


def test_ga4_nested_parquet_without_optional_records(tmp_path):
    """An export holding only the required columns and event_params (no items, ecommerce,
    device or traffic records) maps as well: the records' columns are null."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    params = [[{"key": "ga_session_id", "value": {"string_value": None, "int_value": 1763517600}},
               {"key": "source", "value": {"string_value": "kakao", "int_value": None}}]] * 2
    pq.write_table(pa.table({"event_timestamp": [1795053600000000, 1795053660000000],
                             "event_name": ["page_view", "view_item"], "user_pseudo_id": ["9.1", "9.1"],
                             "event_params": params}), tmp_path / "events_20261119.parquet")
    out = one(tmp_path, "sources:\n  web: {adapter: ga4, path: '.', orders: false}\n", root=tmp_path)
    ev = out.tables["events"]
    assert ev["event"].tolist() == ["page_view", "product_view"] and ev["session_id"].nunique() == 1
    assert set(ev["source"]) == {"kakao"} and ev["product_id"].isna().all() and ev["device"].isna().all()


def test_shop_kpis_on_ga4_events_and_shopify_orders():
    """The engine's session and order figures on the built tables, against the hand counts."""
    from crmlab.sessions import shop_kpis
    d = build(SHOP / "shop.yaml").data()
    k = shop_kpis(d.events, d.orders, period="W").iloc[0]
    assert (k["sessions"], k["visitors"], k["orders"], k["buyers"], k["revenue"]) == (6, 3, 5, 3, 234900.0)
    assert k["sessions_with_purchase"] == 3  # T-9001, T-9002 (twice, one session) and the '(not set)' one


def test_ga4_gzipped_export(tmp_path):
    import gzip
    (tmp_path / "ga4").mkdir()
    for f in (SHOP / "ga4").iterdir():
        (tmp_path / "ga4" / (f.name + ".gz")).write_bytes(gzip.compress(f.read_bytes()))
    out = one(tmp_path, "sources:\n  web: {adapter: ga4, path: ga4}\n")
    assert len(out.tables["events"]) == 22 and len(out.tables["orders"]) == 2


def test_ga4_flattened_parquet(tmp_path):
    out = one(tmp_path, f"sources:\n  web: {{adapter: ga4, path: '{FIX / 'ga4_flat.parquet'}'}}\n")
    assert len(out.tables["events"]) == 3 and out.tables["events"]["session_id"].nunique() == 1
    assert out.tables["orders"][["order_id", "revenue"]].values.tolist() == [["T-9010", 18000.0]]
    assert set(out.tables["events"]["medium"]) == {"crm"}


# ------------------------------------------------------------------------------------- Shopify
def test_shopify_orders(tmp_path):
    out = one(tmp_path, f"sources:\n  store: {{adapter: shopify, path: '{SHOP / 'shopify_orders.csv'}'}}\n")
    o = out.tables["orders"].set_index("order_id")
    # kept: #1001 47100, #1002 89000, #1003 43000, #1005 53000-20000 refunded, #1007 22800
    assert o["revenue"].to_dict() == {"#1001": 47100.0, "#1002": 89000.0, "#1003": 43000.0, "#1005": 33000.0,
                                      "#1007": 22800.0}
    assert o["revenue"].sum() == 234900.0
    assert o["items"].to_dict() == {"#1001": 3, "#1002": 1, "#1003": 6, "#1005": 2, "#1007": 2}
    assert o.loc["#1001", ["discount", "coupon"]].tolist() == [4900.0, "WELCOME10"]
    # "2026-11-18T03:15:00Z" among "+0900" offsets: 12:15 in Seoul
    assert o.loc["#1003", "time"] == pd.Timestamp("2026-11-18 12:15", tz="Asia/Seoul")
    # Minji.Kim@ and minji.kim@ are one customer
    assert o.loc["#1001", "user_id"] == o.loc["#1005", "user_id"] and o.loc["#1001", "user_id"].startswith("u_")
    lg = out.ledgers["orders"]
    assert lg.rows_in == 14 and dict(lg.excluded) == {"cancelled_order": 2, "refunded_order": 1, "unpaid_order": 1,
                                                      "missing_user": 1}
    assert dict(lg.folded) == {"line_item_row": 4} and dict(lg.notes) == {"partial_refund": 1}
    assert_no_row_lost(out)


def test_shopify_ambiguous_dates_need_a_format(tmp_path):
    raw = pd.read_csv(SHOP / "shopify_orders.csv", dtype=str, keep_default_na=False)
    raw.loc[raw["Created at"] != "", "Created at"] = "05/01/2026 10:00"
    raw.loc[raw["Created at"] == "05/01/2026 10:00", "Created at"] = ["05/01/2026 10:00", "13/01/2026 10:00"] * 4 + ["05/01/2026 10:00"]
    raw.to_csv(tmp_path / "orders.csv", index=False)
    with pytest.raises(DataError, match="date_format") as e:
        one(tmp_path, "sources:\n  store: {adapter: shopify, path: orders.csv}\n")
    no_pii(str(e.value))
    assert "u_" in str(e.value)  # the examples show the pseudonym
    out = one(tmp_path, "sources:\n  store: {adapter: shopify, path: orders.csv, date_format: '%d/%m/%Y %H:%M'}\n")
    assert set(out.tables["orders"]["time"].dt.month) == {1} and set(out.tables["orders"]["time"].dt.day) == {5, 13}


def test_shopify_bad_amount_names_rule_without_pii(tmp_path):
    raw = pd.read_csv(SHOP / "shopify_orders.csv", dtype=str, keep_default_na=False)
    raw.loc[0, "Total"] = "n/a"
    raw.to_csv(tmp_path / "orders.csv", index=False)
    with pytest.raises(DataError) as e:
        one(tmp_path, "sources:\n  store: {adapter: shopify, path: orders.csv}\n")
    assert (e.value.table, e.value.column) == ("orders", "Total") and "expected an amount" in e.value.rule
    assert "source 'store'" in str(e.value) and "#1001" in str(e.value)
    no_pii(str(e.value))


def test_shopify_refuses_without_salt(tmp_path, monkeypatch):
    f = tmp_path / "shop.yaml"
    f.write_text(f"sources:\n  store: {{adapter: shopify, path: '{SHOP / 'shopify_orders.csv'}'}}\n")
    with pytest.raises(DataError, match="personal data.*no salt") as e:
        build(f)
    no_pii(str(e.value))
    monkeypatch.delenv("CRMLAB_SALT")
    with pytest.raises(MappingError, match="CRMLAB_SALT"):
        build(SHOP / "shop.yaml")


@pytest.mark.parametrize("entry", [
    f"{{adapter: braze, path: '{SHOP / 'braze_currents.jsonl'}'}}",  # user_id: email forgotten
    f"{{adapter: generic, table: assignments, path: '{SHOP / 'assignments.csv'}', assigned_time: '2026-11-16',"
    " columns: {exp: experiment, member_email: user_id, arm: variant}}",  # pii: forgotten
])
def test_undeclared_personal_ids_are_refused(tmp_path, entry):
    with pytest.raises(DataError, match="ids look like e-mail addresses") as e:
        build(load(mapping_file(tmp_path, f"sources:\n  s: {entry}\n")))
    assert "pii: {user_id: email}" in str(e.value)
    no_pii(str(e.value))


def test_other_salt_other_pseudonyms(tmp_path, monkeypatch):
    body = f"sources:\n  store: {{adapter: shopify, path: '{SHOP / 'shopify_orders.csv'}'}}\n"
    a = one(tmp_path, body).tables["orders"]["user_id"]
    monkeypatch.setenv("CRMLAB_SALT", "another-salt")
    b = one(tmp_path, body).tables["orders"]["user_id"]
    assert not set(a) & set(b)


# -------------------------------------------------------------------------------------- Cafe24
def test_cafe24_cp949_and_utf8_bom(tmp_path):
    body = "sources:\n  orders: {adapter: cafe24, path: orders.csv}\n"
    raw = (KR / "cafe24_orders.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the fixture really is CP949
    results = []
    for name, data in (("cp949", raw), ("bom", "\ufeff".encode() + raw.decode("cp949").encode("utf-8"))):
        (tmp_path / "orders.csv").write_bytes(data)
        out = one(tmp_path, body)
        results.append(out.tables["orders"])
        assert_no_row_lost(out)
    pd.testing.assert_frame_equal(results[0], results[1])
    o = results[0].set_index("order_id")
    assert o["revenue"].to_dict() == {"20261116-0000001": 58000.0, "20261120-0000004": 120500.0,
                                      "20261122-0000007": 33000.0}
    assert o.loc["20261120-0000004", ["items", "discount", "coupon"]].tolist() == [4, 5000.0, "겨울맞이 5천원"]
    assert dict(out.ledgers["orders"].excluded) == {"guest_order": 1, "cancelled_order": 2, "unpaid_order": 1,
                                                    "returned_order": 1}


def test_cafe24_unreadable_encoding(tmp_path):
    (tmp_path / "orders.csv").write_bytes("주문번호".encode("utf-16"))
    with pytest.raises(DataError, match="neither UTF-8 nor CP949"):
        one(tmp_path, "sources:\n  orders: {adapter: cafe24, path: orders.csv}\n")


# --------------------------------------------------------------------------------------- Braze
def test_braze_messages(tmp_path):
    out = one(tmp_path, f"sources:\n  braze: {{adapter: braze, path: '{SHOP / 'braze_currents.jsonl'}', user_id: email}}\n")
    m = out.tables["messages"]
    assert len(m) == 7  # 4 winter_sale e-mails, 2 cart_reminder pushes, 1 weekend_push
    assert m.groupby("channel").size().to_dict() == {"android_push": 1, "email": 4, "ios_push": 2}
    mail = m[m["channel"] == "email"]
    assert mail["delivered_time"].notna().sum() == 3 and mail["opened_time"].notna().sum() == 2
    assert mail["clicked_time"].notna().sum() == 1 and mail["unsubscribed_time"].notna().sum() == 1
    tap = m[m["channel"] == "android_push"].iloc[0]
    assert tap["opened_time"] == tap["clicked_time"] == pd.Timestamp("2026-11-19 20:10", tz="Asia/Seoul")
    assert m["is_ad"].all()
    lg = out.ledgers["messages"]
    assert lg.rows_in == 19 and dict(lg.excluded) == {"duplicate_send": 1, "engagement_without_send": 1,
                                                      "unmapped_event_type": 1}
    assert lg.folded["engagement_event"] == 9 and lg.notes["bounced"] == 1
    assert_no_row_lost(out)
    canonical(m, "messages")  # ios_push / android_push: registered channels


# ------------------------------------------------------------------------------------ receipts
def test_kakao_and_sms_receipts(tmp_path):
    out = one(tmp_path, f"sources:\n  at: {{adapter: receipts, vendor: nhn_kakao, channel: kakao_alimtalk, "
                        f"path: '{KR / 'kakao_alimtalk.csv'}'}}\n")
    m = out.tables["messages"]
    assert len(m) == 4 and m["delivered_time"].notna().sum() == 3
    assert m["opened_time"].isna().all() and m["clicked_time"].isna().all() and not m["is_ad"].any()
    # "+82-10-2000-1002" and "010-2000-1002": one recipient
    assert m["user_id"].value_counts().max() == 2
    assert dict(out.ledgers["messages"].excluded) == {"missing_recipient": 1}
    assert_no_row_lost(out)
    sms = one(tmp_path, f"sources:\n  sms: {{adapter: receipts, vendor: nhn_sms, path: '{KR / 'sms_receipts.csv'}'}}\n")
    s = sms.tables["messages"]
    assert s.groupby("channel").size().to_dict() == {"lms": 2, "sms": 2}
    assert s["delivered_time"].notna().sum() == 3 and sms.ledgers["messages"].notes["bounced"] == 1


# ------------------------------------------------------------------------------ generic + registry
def test_generic_log_and_open_channel_registry(tmp_path):
    body = (f"channels:\n  LINE: {{alias: line}}\n  zalo: {{signals: [receipt_only]}}\n"
            f"sources:\n  log: {{adapter: generic, path: '{KR / 'message_log.csv'}', values: {{is_ad: false}}, "
            "columns: {msg_id: message_id, member: user_id, camp: campaign, ch: channel, sent_at: sent_time, "
            "delivered_at: delivered_time}}\n")
    out = one(tmp_path, body)
    m = out.tables["messages"]
    assert m["channel"].tolist() == ["line", "line", "zalo"]
    assert channels.receipt_only("zalo") and not channels.receipt_only("ios_push")
    canonical(m, "messages")
    channels._reset()  # an undeclared channel is refused, naming the rule
    with pytest.raises(DataError, match="channel.*unknown value"):
        canonical(m, "messages")


def test_assignments_need_a_time(tmp_path):
    body = (f"sources:\n  t: {{adapter: generic, table: assignments, path: '{SHOP / 'assignments.csv'}', "
            "columns: {exp: experiment, member_email: user_id, arm: variant, assigned_at: assigned_time}, "
            "pii: {user_id: email}}\n")
    with pytest.raises(DataError, match="need it") as e:
        one(tmp_path, body)
    no_pii(str(e.value))
    out = one(tmp_path, body.replace("pii:", "assigned_time: '2026-11-16 08:55', pii:"))
    assert len(out.tables["assignments"]) == 8 and out.tables["assignments"]["assigned_time"].notna().all()


def test_bad_mapping_is_a_parameter_error(tmp_path, capsys):
    f = mapping_file(tmp_path, "sources:\n  x: {adapter: magento, path: a.csv}\n")
    assert main(["check", str(tmp_path), "--mapping", str(f), "--week", WEEK]) == 2
    assert "expected one of" in capsys.readouterr().err


# --------------------------------------------------------------------------- check -> import -> report
def test_check_names_what_each_adapter_can_run(capsys):
    assert main(["check", str(SHOP), "--mapping", str(SHOP / "shop.yaml"), "--week", WEEK]) == 0
    out = capsys.readouterr().out
    blocks = dict(b.split("\n", 1) for b in re.split(r"^source ", out, flags=re.M)[1:])
    assert "can run alone: funnel" in blocks["web (ga4): events 22 rows"]
    assert "can run alone: cohort_rfm" in blocks["store (shopify): orders 5 rows"]
    assert "cannot run alone: message_performance: the source has no orders table" in blocks["braze (braze): messages 7 rows"]
    assert "14 input rows; excluded 2 cancelled_order" in out
    assert out.count("\nok ") == 5  # together: every report can run
    no_pii(out)


def test_check_korean_shop(capsys):
    assert main(["check", str(KR), "--mapping", str(KR / "shop.yaml"), "--week", WEEK, "--report", "weekly"]) == 3
    out, err = capsys.readouterr()
    assert "PROBLEM  weekly_uplift" in out and "ok       message_performance" in out
    assert "the source has no assignments table" in err
    no_pii(out + err)
    assert main(["check", str(KR), "--mapping", str(KR / "shop.yaml"), "--week", WEEK,
                 "--report", "message_performance"]) == 0


def test_imported_folder_keeps_custom_channels(tmp_path, capsys):
    dest = tmp_path / "kr"
    assert main(["import", str(KR), "--mapping", str(KR / "shop.yaml"), "--out", str(dest)]) == 0
    channels._reset()  # a new process: the folder's own shop.yaml declares zalo again
    assert main(["check", str(dest), "--week", WEEK, "--report", "message_performance"]) == 0
    no_pii("".join(p.read_bytes().decode("utf-8", "replace") for p in dest.iterdir()))


@pytest.fixture(scope="module")
def hanbit(tmp_path_factory):
    """The GA4 + Shopify + Braze shop, imported and reported once (about 25 s)."""
    import os
    os.environ["CRMLAB_SALT"] = SALT
    root = tmp_path_factory.mktemp("hanbit")
    data, reports = root / "data", root / "reports"
    assert main(["import", str(SHOP), "--mapping", str(SHOP / "shop.yaml"), "--out", str(data)]) == 0
    code = main(["report", "weekly", "--source", str(data), "--week", WEEK, "--out", str(reports), "--no-progress"])
    funnel = main(["report", "funnel", "--source", str(data), "--week", WEEK, "--out", str(reports), "--no-progress"])
    return data, reports, (code, funnel)


def test_weekly_report_on_ga4_and_shopify(hanbit):
    data, reports, codes = hanbit
    assert codes == (0, 0)
    orders = pd.read_parquet(data / "orders.parquet")
    assert len(orders) == 5 and orders["revenue"].sum() == 234900.0
    assert pd.read_parquet(data / "events.parquet")["session_id"].nunique() == 6
    ledger = pd.read_csv(data / "exclusions.csv")
    assert ledger.query("kind == 'excluded'")["rows"].sum() == 5 + 3 + 1  # shopify, braze, assignments
    html = {p.name: p.read_text(encoding="utf-8") for p in (reports / WEEK).glob("*.html")}
    assert set(html) == {"weekly_uplift.html", "message_performance.html", "funnel.html"}
    assert "winter_sale" in html["weekly_uplift.html"]
    # 7 Braze sends, 6 delivered; winter_sale credited with #1001 + #1002 + #1003 = 47,100 + 89,000 + 43,000
    assert "7 messages went out this week" in html["message_performance.html"]
    assert "₩179,100" in html["message_performance.html"]
    everything = "".join(html.values()) + "".join(p.read_bytes().decode("utf-8", "replace")
                                                  for p in data.rglob("*") if p.is_file())  # GA4's parts too
    no_pii(everything)
    assert SALT not in everything


@pytest.fixture(scope="module")
def korean_shop(tmp_path_factory):
    """The Cafe24 + Kakao + SMS + declared-channel shop: check, import, check, reports (about 35 s).

    It has no randomisation log and no web events, so the weekly report runs with
    ``--allow-partial`` (weekly_uplift says why it has nothing to measure)."""
    import os
    os.environ["CRMLAB_SALT"] = SALT
    channels._reset()
    root = tmp_path_factory.mktemp("kr")
    data, reports = root / "data", root / "reports"
    codes = {"check_mapping": main(["check", str(KR), "--mapping", str(KR / "shop.yaml"), "--week", WEEK,
                                    "--report", "message_performance"]),
             "import": main(["import", str(KR), "--mapping", str(KR / "shop.yaml"), "--out", str(data)])}
    channels._reset()  # from here on the imported folder's own shop.yaml declares zalo
    codes["check"] = main(["check", str(data), "--week", WEEK, "--report", "message_performance"])
    codes["weekly"] = main(["report", "weekly", "--source", str(data), "--week", WEEK, "--out", str(reports),
                            "--no-progress", "--allow-partial"])
    codes["cohort_rfm"] = main(["report", "cohort_rfm", "--source", str(data), "--week", WEEK, "--out",
                                str(reports), "--no-progress"])
    return data, reports, codes


def _text(html: str) -> str:
    """The visible text of a report page, whitespace collapsed."""
    import html as h
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", h.unescape(re.sub(r"<[^>]+>", " ", html)))


def test_weekly_report_on_cafe24_and_receipts(korean_shop):
    """Hand counts (tests/fixtures/sources/README.md): Cafe24 keeps orders 0001 (58,000), 0004 (120,500)
    and 0007 (33,000); 4 AlimTalk + 4 SMS/LMS receipts + 3 log rows = 11 messages, delivered
    3 + 3 + 2 = 8; the only message followed by its recipient's order within the window is Z-1
    (junpark, zalo, 11-21 08:00) before order 0007 (11-22 15:30)."""
    data, reports, codes = korean_shop
    assert codes == {"check_mapping": 0, "import": 0, "check": 0, "weekly": 0, "cohort_rfm": 0}
    orders, msgs = pd.read_parquet(data / "orders.parquet"), pd.read_parquet(data / "messages.parquet")
    assert (len(orders), orders["revenue"].sum()) == (3, 211500.0)
    assert msgs.groupby("channel").size().to_dict() == {"kakao_alimtalk": 4, "line": 2, "lms": 2, "sms": 2, "zalo": 1}
    ledger = pd.read_csv(data / "exclusions.csv")
    assert ledger.query("kind == 'excluded'")["rows"].sum() == 5 + 1 + 1  # cafe24, alimtalk, log
    page = {p.stem: _text(p.read_text(encoding="utf-8")) for p in (reports / WEEK).glob("*.html")}
    assert set(page) == {"weekly_uplift", "message_performance", "cohort_rfm"}
    mp = page["message_performance"]
    assert "11 messages went out this week" in mp and "8 of them were delivered (72.7%)" in mp
    assert "(₩33,000 attributed revenue)" in mp and "'zalo_test' on zalo (₩33,000" in mp
    assert "Partial data" in page["weekly_uplift"] and "the source has no assignments table" in page["weekly_uplift"]
    # the RFM table's revenue per segment: the three kept orders, one customer each
    rfm = page["cohort_rfm"]
    assert all(f"1 33.3% {v}" in rfm for v in ("₩33,000", "₩120,500", "₩58,000"))
    no_pii("".join(page.values()) + "".join(p.read_bytes().decode("utf-8", "replace") for p in data.iterdir()))


def test_send_time_heatmap_with_no_cell_to_colour():
    """Defect found by the Korean shop's report: every send-time cell below ``min_count`` (or
    without a rate, as on receipt-only channels) crashed seaborn ("zero-size array")."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from crmlab.report import plots
    rate = pd.DataFrame([[0.0, np.nan], [np.nan, np.nan]], index=["Wed", "Sat"], columns=[10, 19])
    n = pd.DataFrame([[3, 1], [2, 400]], index=rate.index, columns=rate.columns)
    ax = plots.heatmap(rate, "en", counts=n, min_count=30)
    assert sorted(t.get_text() for t in ax.texts) == ["n=1", "n=2", "n=3", "n=400"]  # no "nan", no rate
    assert ax.collections[0].get_array().mask.all()
    plt.close(ax.figure)


# ------------------------------------------------------------------------------ boundary details
def test_event_name_map_from_shop_yaml(tmp_path):
    out = one(tmp_path, f"events: {{first_visit: landing, session_start: landing}}\n"
                        f"sources:\n  web: {{adapter: ga4, path: '{SHOP / 'ga4'}', orders: false}}\n")
    assert (out.tables["events"]["event"] == "landing").sum() == 2 and "orders" not in out.tables


def test_braze_click_without_delivery_event_counts_as_delivered(tmp_path):
    lines = [ln for ln in (SHOP / "braze_currents.jsonl").read_text().splitlines()
             if not ('"users.messages.email.Delivery"' in ln and "minji" in ln)]
    (tmp_path / "b.jsonl").write_text("\n".join(lines) + "\n")
    out = one(tmp_path, "sources:\n  braze: {adapter: braze, path: b.jsonl, user_id: email}\n")
    m = out.tables["messages"]
    clicked = m[m["clicked_time"].notna() & (m["channel"] == "email")].iloc[0]
    assert clicked["delivered_time"] == clicked["sent_time"]
    assert out.ledgers["messages"].notes["delivery_inferred_from_engagement"] == 1
    assert_no_row_lost(out)


def test_braze_event_type_from_currents_folders(tmp_path):
    rows = pd.read_json(SHOP / "braze_currents.jsonl", lines=True, dtype=False, convert_dates=False)
    for et, part in rows.groupby("event_type"):
        folder = tmp_path / "currents" / f"event_type={et}"
        folder.mkdir(parents=True)
        part.drop(columns="event_type").to_json(folder / "part-0.jsonl", orient="records", lines=True)
    out = one(tmp_path, "sources:\n  braze: {adapter: braze, path: currents, user_id: email}\n")
    assert len(out.tables["messages"]) == 7 and out.ledgers["messages"].rows_in == 19


def test_ids_are_nfc_text_without_invisible_characters():
    import unicodedata
    from crmlab.io.sources.base import text_ids
    nfd = unicodedata.normalize("NFD", "민지77")
    ids = text_ids(pd.Series([nfd, "민지77\u200b", 123, 123.0, " 123 ", None]))
    assert ids[:5].tolist() == ["민지77", "민지77", "123", "123", "123"] and pd.isna(ids[5])


def test_missing_vendor_column_is_named(tmp_path):
    raw = pd.read_csv(SHOP / "shopify_orders.csv", dtype=str).drop(columns=["Total"])
    raw.to_csv(tmp_path / "orders.csv", index=False)
    with pytest.raises(DataError, match=r"lacks column\(s\) \['Total'\]") as e:
        one(tmp_path, "sources:\n  store: {adapter: shopify, path: orders.csv}\n")
    assert e.value.column == "Total" and "sources.store.columns" in str(e.value)


def test_currency_must_match_shop_yaml(tmp_path):
    f = tmp_path / "shop.yaml"
    f.write_text(f"currency: USD\nsalt_env: CRMLAB_SALT\nsources:\n  s: {{adapter: shopify, path: '{SHOP / 'shopify_orders.csv'}'}}\n")
    with pytest.raises(DataError, match="currency differs from shop.yaml's USD"):
        build(f)


@pytest.mark.parametrize("entry, message", [
    ("{adapter: generic, path: a.csv, columns: [a, b]}", "columns: expected a mapping"),
    ("{adapter: generic, path: a.csv, pii: {user_id: name}}", "is 'email' or 'phone'"),
    ("{adapter: shopify}", "expected a mapping with 'adapter' and 'path'"),
])
def test_malformed_source_entries(tmp_path, entry, message):
    with pytest.raises(MappingError, match=re.escape(message)):
        load(mapping_file(tmp_path, f"sources:\n  s: {entry}\n"))


@pytest.mark.parametrize("entry, message", [
    ("{X: {alias: fax}}", "not a channel"),
    ("{Zalo: {signals: [receipt_only]}}", "snake_case"),
    ("{zalo: {signals: [opens]}}", "expected [receipt_only] or a list of open, click"),
    ("{zalo: receipt_only}", "expected {signals"),
])
def test_malformed_channels(tmp_path, entry, message):
    with pytest.raises(MappingError, match=re.escape(message)):
        load(mapping_file(tmp_path, f"channels: {entry}\nsources:\n  s: {{adapter: shopify, path: a.csv}}\n"))


def test_id_type_other_than_text_is_refused(tmp_path):
    with pytest.raises(MappingError, match="ids are always text"):
        load(mapping_file(tmp_path, "id_type: integer\nsources:\n  s: {adapter: shopify, path: a.csv}\n"))


def test_phone_pseudonyms_join_cafe24_guests_and_kakao_receipts(tmp_path):
    body = (f"sources:\n  orders: {{adapter: cafe24, path: '{KR / 'cafe24_orders.csv'}', user_id: phone}}\n"
            f"  at: {{adapter: receipts, channel: kakao_alimtalk, path: '{KR / 'kakao_alimtalk.csv'}'}}\n")
    built = build(load(mapping_file(tmp_path, body)))
    orders, msgs = built.outputs[0].tables["orders"], built.outputs[1].tables["messages"]
    assert len(orders) == 4 and orders["revenue"].sum() == 211500.0 + 21000.0  # the guest order is kept
    assert "guest_order" not in built.outputs[0].ledgers["orders"].excluded
    # receipts for 010-2000-1001, -1003 and (twice) -1002 name buyers of orders 0001, 0004, 0007
    assert set(msgs["user_id"]) <= set(orders["user_id"]) and msgs["user_id"].nunique() == 3
    no_pii(built.exclusions().to_csv() + orders.to_csv() + msgs.to_csv())


def test_cli_bad_export_is_one_line_exit_3_without_pii(tmp_path, capsys):
    raw = pd.read_csv(SHOP / "shopify_orders.csv", dtype=str, keep_default_na=False)
    raw.loc[0, "Total"] = "n/a"
    raw.to_csv(tmp_path / "orders.csv", index=False)
    f = mapping_file(tmp_path, "sources:\n  store: {adapter: shopify, path: orders.csv}\n")
    assert main(["import", str(tmp_path), "--mapping", str(f), "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "column 'Total': source 'store' (shopify): expected an amount" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    no_pii(err)


# ------------------------------------------------------------- GA4 import in bounded memory
def _ga4_row(local: str, name: str, pseudo: str, sid: int | None = None, utm=None, tid=None, revenue=None):
    """One GA4 export row (BigQuery's NDJSON: INT64 as text) at the Seoul time ``local``."""
    params = [{"key": "page_location", "value": {"string_value": "https://hanbit.example/", "int_value": None,
                                                 "float_value": None, "double_value": None}}]
    if sid is not None:
        params.append({"key": "ga_session_id", "value": {"string_value": None, "int_value": str(sid),
                                                         "float_value": None, "double_value": None}})
    stamp = pd.Timestamp(local, tz="Asia/Seoul").value // 1000
    return {"event_date": local[:10].replace("-", ""), "event_timestamp": str(stamp), "event_name": name,
            "event_params": params, "user_pseudo_id": pseudo, "user_id": None,
            "device": {"category": "mobile", "operating_system": "Android"},
            "traffic_source": {"source": "google", "medium": "organic", "name": "(organic)"},
            "collected_traffic_source": None if utm is None else dict(zip(
                ("manual_source", "manual_medium", "manual_campaign_name"), utm)),
            "ecommerce": None if tid is None else {"transaction_id": tid, "purchase_revenue": revenue,
                                                   "total_item_quantity": "1"},
            "items": [] if tid is None else [{"item_id": "SKU-500", "item_category": "outer", "price": revenue,
                                              "quantity": "1"}]}


def _daily_export(folder: Path, kind: str) -> Path:
    """The shop's GA4 export as 5 files: 2026-11-16 in two files (T-9002's reload in the second),
    a session of user 4444 crossing midnight 17/18 (its UTM on the 00:05 event of the 18th, an
    event without ga_session_id at 00:02, T-9500 bought at 23:58 and repeated at 00:20)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq
    read = lambda f: [json.loads(ln) for ln in f.read_text(encoding="utf-8").splitlines()]  # noqa: E731
    day16, day20 = read(SHOP / "ga4" / "events_20261116.json"), read(SHOP / "ga4" / "events_20261120.json")
    u, s = "4444444444.1763300000", 1763390100
    files = {
        "events_20261116_000000000000": day16[:10], "events_20261116_000000000001": day16[10:],
        "events_20261117": [_ga4_row("2026-11-17 23:55", "page_view", u, s),
                            _ga4_row("2026-11-17 23:58", "purchase", u, s, tid="T-9500", revenue="50000")],
        "events_20261118": [_ga4_row("2026-11-18 00:02", "view_item", u),
                            _ga4_row("2026-11-18 00:05", "page_view", u, s, utm=("kakao", "crm", "night")),
                            _ga4_row("2026-11-18 00:20", "purchase", u, s, tid="T-9500", revenue="50000")],
        "events_20261120": day20}
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        if kind == "json":
            (folder / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        else:
            pq.write_table(pa.Table.from_pylist(rows), folder / f"{name}.parquet")
    return folder


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` sorted by all its columns, text as object/None (an all-null text column is written
    as text in a part, as null-typed by pandas)."""
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_string_dtype(df[c]) or df[c].dtype == object:
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df.sort_values(list(df.columns), kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("kind", ["json", "parquet"])
@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_ga4_import_in_chunks_equals_the_whole_export(tmp_path, kind, chunk):
    """crmlab import reads a GA4 export file by file (crmlab.io.sources.stream): chunks of 1, 2
    and all 5 files give the tables and ledger of the whole export read at once (build), across
    files: the duplicate T-9002 and T-9500, the session crossing midnight (UTM from its 00:05
    event on its 4 events with ga_session_id, the 00:02 event without one joined to it)."""
    from crmlab.io.sources import import_to
    _daily_export(tmp_path / "ga4", kind)
    f = mapping_file(tmp_path, f"sources:\n  web: {{adapter: ga4, path: ga4/, chunk_files: {chunk}}}\n")
    whole = build(load(f)).outputs[0]
    built, rows, bad = import_to(load(f), tmp_path / "out")
    assert bad == {} and rows == {"events": 27, "orders": 3}
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["events.parquet", "exclusions.csv", "orders.parquet",
                                                     "shop.yaml"]
    assert (out / "events.parquet").is_dir() and len(list((out / "events.parquet").iterdir())) <= -(-5 // chunk)
    from crmlab.datasets import load_source
    write(build(load(f)), tmp_path / "whole")
    for table in ("events", "orders"):  # the same rows (in bucket order), columns and types on disk
        parts = sorted((out / f"{table}.parquet").iterdir())
        pd.testing.assert_frame_equal(_sorted(pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)),
                                      _sorted(pd.read_parquet(tmp_path / "whole" / f"{table}.parquet")))
    # and as the report reads them
    a, b = load_source(out), load_source(tmp_path / "whole")
    for table in ("events", "orders"):
        pd.testing.assert_frame_equal(_sorted(getattr(a, table)), _sorted(getattr(b, table)))
    pd.testing.assert_frame_equal(built.exclusions(), whole.exclusions())
    pd.testing.assert_frame_equal(pd.read_csv(out / "exclusions.csv"), whole.exclusions())
    ev = pd.read_parquet(out / "events.parquet")
    night = ev[ev["user_id"] == "ga4:4444444444.1763300000"].sort_values("time")
    assert night["session_id"].tolist() == ["4444444444.1763300000:1763390100"] * 5
    # the landing UTM of the 18th reaches the 17th's events; the 00:02 event, joined to the session
    # for lack of a ga_session_id, keeps its own (null) UTM: the rule of the whole-export path
    assert night["source"].fillna("-").tolist() == ["kakao", "kakao", "-", "kakao", "kakao"]
    o = pd.read_parquet(out / "orders.parquet").set_index("order_id")
    assert sorted(o.index) == ["T-9001", "T-9002", "T-9500"]
    assert o.loc["T-9500", "time"] == pd.Timestamp("2026-11-17 23:58", tz="Asia/Seoul")
    lg = built.outputs[0].ledgers
    assert (lg["orders"].rows_in, dict(lg["orders"].excluded)) == (
        6, {"duplicate_purchase_event": 2, "purchase_without_transaction_id": 1})
    assert lg["events"].rows_in == 27 and lg["events"].notes["missing_ga_session_id"] == 2
    assert lg["orders"].rows_in == rows["orders"] + lg["orders"].accounted


def test_ga4_import_in_chunks_refuses_a_bad_row_in_any_file(tmp_path, capsys):
    """Every file is mapped and validated: an e-mail address as user_id in the last file stops
    the import (exit 3, one line, the address not shown) and nothing is written."""
    import json
    folder = _daily_export(tmp_path / "ga4", "json")
    rows = [json.loads(ln) for ln in (folder / "events_20261120.json").read_text(encoding="utf-8").splitlines()]
    rows[-1]["user_id"] = "minji.kim@example.com"
    (folder / "events_20261120.json").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    f = mapping_file(tmp_path, "sources:\n  web: {adapter: ga4, path: ga4/, chunk_files: 1}\n")
    assert main(["import", str(tmp_path), "--mapping", str(f), "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "source 'web'" in err and "look like e-mail addresses" in err
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    no_pii(err)


def test_ga4_chunk_files_must_be_a_whole_number(tmp_path, capsys):
    _daily_export(tmp_path / "ga4", "json")
    f = mapping_file(tmp_path, "sources:\n  web: {adapter: ga4, path: ga4/, chunk_files: 0}\n")
    assert main(["import", str(tmp_path), "--mapping", str(f), "--out", str(tmp_path / "out")]) == 2
    assert "chunk_files=0: expected a whole number" in capsys.readouterr().err
