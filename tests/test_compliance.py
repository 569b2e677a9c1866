"""Korean advertising-message rules: each rule with a violating and a compliant message."""
import pandas as pd
import pytest

from conftest import assert_same_frame
from crmlab.compliance import RULES, check_compliance

T = pd.Timestamp
OK_TEXT = "(광고) 봄 세일 20% 할인 무료수신거부 080-123-4567"


def customers():
    return pd.DataFrame({
        "user_id": ["ok", "no_sms", "no_night", "old", "late_consent"],
        "signup_time": [T("2020-01-01")] * 5,
        "consent_sms": [True, False, True, True, True],
        "consent_sms_time": [T("2024-01-01"), None, T("2024-01-01"), T("2021-06-01"), T("2024-03-10")],
        "consent_kakao_friendtalk": [True, True, True, True, True],
        "consent_kakao_friendtalk_time": [T("2024-01-01")] * 5,
        "consent_email": [True, True, True, True, True],
        "night_ad_consent": [True, True, False, True, True],
        "night_ad_consent_time": [T("2024-01-01")] * 5,
    })


def message(mid, user, channel="sms", at="2024-03-04 10:00", text=OK_TEXT, is_ad=True):
    return {"message_id": mid, "user_id": user, "campaign": "spring", "channel": channel, "is_ad": is_ad,
            "text": text, "sent_time": T(at)}


def run(rows, **kw):
    res = check_compliance(pd.DataFrame(rows), customers(), **kw)
    return res.set_index("rule")


def violations(res):
    return {r: int(v) for r, v in res["violations"].items() if v}


def test_compliant_messages_break_no_rule():
    rows = [message("a", "ok"), message("b", "no_night", at="2024-03-04 20:59"),
            message("c", "ok", "kakao_friendtalk", at="2024-03-04 19:59", text="(광고) 친구톡 혜택 안내 채널 차단"),
            message("d", "no_sms", text="주문하신 상품이 발송되었습니다", is_ad=False),  # informational: no consent needed
            message("e", "ok", "email", at="2024-03-04 23:00", text="(광고) newsletter - unsubscribe here")]
    res = run(rows)
    assert violations(res) == {}
    assert list(res.index) == list(RULES)
    assert res.loc["ad_without_prefix", "checked"] == 4


@pytest.mark.parametrize("rule, bad, good", [
    ("night_ad_without_consent",
     message("bad", "no_night", at="2024-03-04 21:00"), message("good", "no_night", at="2024-03-04 08:00")),
    ("night_ad_without_consent",  # 07:59 is still night
     message("bad", "no_night", at="2024-03-05 07:59"), message("good", "ok", at="2024-03-05 07:59")),
    ("ad_without_channel_consent", message("bad", "no_sms"), message("good", "ok")),
    ("ad_without_channel_consent",  # consent given only after the send
     message("bad", "late_consent", at="2024-03-04 10:00"), message("good", "late_consent", at="2024-03-11 10:00")),
    ("ad_without_prefix", message("bad", "ok", text="봄 세일 (광고) 무료수신거부 080-123-4567"),
     message("good", "ok", text="  (광고) 봄 세일 무료수신거부 080-123-4567")),
    ("ad_without_optout", message("bad", "ok", text="(광고) 봄 세일 20% 할인"),
     message("good", "ok", text="(광고) 봄 세일 수신 거부: 080-123-4567")),
    ("sms_over_90_bytes",  # 6 + 80 + 8 = 94 bytes; an LMS may be long
     message("bad", "ok", text="(광고)" + "가" * 40 + "수신거부"),
     message("good", "ok", "lms", text="(광고)" + "가" * 40 + "수신거부")),
    ("sms_over_90_bytes",  # 90 bytes exactly is allowed: "(광고)" 6 + 40 Hangul 80 + "수신" 4 = 90
     message("bad", "ok", text="(광고)" + "가" * 40 + "수신거부x"), message("good", "ok", text="(광고)" + "가" * 40 + "수신")),
    ("consent_not_reconfirmed", message("bad", "old", at="2024-03-04 10:00"),
     message("good", "old", at="2023-05-31 10:00")),
    ("friendtalk_night", message("bad", "ok", "kakao_friendtalk", at="2024-03-04 20:00", text="(광고) 채널 차단"),
     message("good", "ok", "kakao_friendtalk", at="2024-03-04 08:00", text="(광고) 채널 차단")),
])
def test_each_rule_flags_the_violating_message_only(rule, bad, good):
    res = run([bad, good])
    assert res.loc[rule, "violations"] == 1
    assert res.loc[rule, "example_message_ids"] == ["bad"]


def test_sms_bytes_match_python_cp949():
    texts = ["(광고) 안녕하세요 고객님 ABC 123 무료수신거부 080-000-0000", "가나다" * 15, "a" * 91, "(광고) 한글과 English 섞임 수신거부"]
    rows = [message(f"m{i}", "ok", text=t) for i, t in enumerate(texts)]
    res = run(rows)
    expected = sum(len(t.encode("cp949")) > 90 for t in texts)
    assert res.loc["sms_over_90_bytes", "violations"] == expected == 1
    assert res.loc["sms_over_90_bytes", "example_message_ids"] == ["m2"]


def test_missing_text_and_unknown_users_and_as_of():
    rows = [message("m1", "ghost", text=None), message("m2", "ok", at="2024-06-01 10:00", text=None)]
    res = run(rows, as_of="2024-05-01")
    assert res.loc["ad_without_prefix", "checked"] == 0
    assert res.loc["ad_without_channel_consent", "violations"] == 1  # unknown user: no consent
    assert res.attrs["excluded"]["messages sent after as_of"] == 1
    assert res.attrs["excluded"]["messages to users missing from customers (treated as no consent)"] == 1


def test_hours_are_local_to_tz():
    # 13:00 UTC is 22:00 in Seoul: night-time there.
    rows = [message("m1", "no_night", at="2024-03-04 13:00")]
    df = pd.DataFrame(rows)
    df["sent_time"] = df["sent_time"].dt.tz_localize("UTC")
    res = check_compliance(df, customers()).set_index("rule")
    assert res.loc["night_ad_without_consent", "violations"] == 1


def test_same_on_every_backend(backend):
    rows = [message("a", "ok"), message("b", "no_night", at="2024-03-04 22:00"), message("c", "no_sms"),
            message("d", "old", text="가" * 50), message("e", "ok", "kakao_friendtalk", at="2024-03-04 20:30")]
    msgs = pd.DataFrame(rows)
    ref = check_compliance(msgs, customers())
    got = check_compliance(backend(msgs), backend(customers()))
    assert_same_frame(got, ref)


@pytest.mark.parametrize("seed", [0, 1])
def test_counts_equal_planted_violations(seed):
    from crmlab.datasets import synthetic_shop
    shop = synthetic_shop(n_users=5_000, weeks=12, seed=seed, end=T("2025-06-02", tz="Asia/Seoul"))
    res = check_compliance(shop.messages, shop.customers).set_index("rule")
    assert res["violations"].to_dict() == shop.truth["violations"]
    assert all(v > 0 for v in shop.truth["violations"].values())  # every rule is exercised
    # example ids are real violating messages of that rule
    ids = res.loc["sms_over_90_bytes", "example_message_ids"]
    texts = shop.messages.set_index("message_id").loc[ids]
    assert (texts["channel"] == "sms").all()
    assert all(len(t.encode("cp949")) > 90 for t in texts["text"])
