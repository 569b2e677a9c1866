"""Step 5 of the generative process: the planted compliance violations, counted exactly on the generated tables."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...io.schema import CHANNELS


def _violations(user, ch, send, is_ad, texts, t_inv, consent, consent_t, night, night_t, clock, start_ts, tz) -> dict:
    """Count compliance violations exactly as :func:`crmlab.compliance.check_compliance` defines them."""
    import re
    chn = np.array(CHANNELS)[ch]
    has = np.zeros(user.size, bool)
    ctime = np.zeros(user.size, np.int64)
    for i, name in enumerate(CHANNELS):
        m = ch == i
        has[m] = consent[name][user[m]] & (consent_t[name][user[m]] <= send[m])
        ctime[m] = consent_t[name][user[m]]
    hour = clock.local_hour(send)
    night_hour = (hour >= 21) | (hour < 8)
    night_ok = night[user] & (night_t[user] <= send)
    pat = re.compile(r"수신\s*(거부|차단|해지|철회)|채널\s*차단|unsubscribe")
    prefix = np.array([t.lstrip().startswith("(광고)") for t in texts] + [False], bool)[t_inv]
    opt = np.array([bool(pat.search(t)) for t in texts] + [False], bool)[t_inv]
    nbytes = np.array([len(t.encode("cp949")) for t in texts] + [0])[t_inv]
    # consent + 24 months, in local wall-clock time (as the engine compares)
    held = is_ad & has
    sent_local = clock.to_time(send[held]).dt.tz_localize(None)
    c_local = clock.to_time(ctime[held]).dt.tz_localize(None)
    old = (sent_local.values > (c_local + pd.DateOffset(months=24)).values)
    return {
        "night_ad_without_consent": int((is_ad & night_hour & ~night_ok).sum()),
        "ad_without_channel_consent": int((is_ad & ~has).sum()),
        "ad_without_prefix": int((is_ad & ~prefix).sum()),
        "ad_without_optout": int((is_ad & ~opt).sum()),
        "sms_over_90_bytes": int(((chn == "sms") & (nbytes > 90)).sum()),
        "consent_not_reconfirmed": int(old.sum()),
        "friendtalk_night": int(((chn == "kakao_friendtalk") & ((hour >= 20) | (hour < 8))).sum()),
    }
