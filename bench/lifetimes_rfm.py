"""Peer benchmark: lifetimes' summary_data_from_transaction_data on the bench orders.
Runs in bench/.venv-lifetimes (lifetimes needs pandas < 2); prints the same JSON line as task.py."""
import json
import resource
import sys
import time
from pathlib import Path

import pandas as pd
from lifetimes.utils import summary_data_from_transaction_data

AS_OF = "2026-11-23"

if __name__ == "__main__":
    data = Path(sys.argv[1])
    t0 = time.perf_counter()
    o = pd.read_parquet(data / "orders.parquet", columns=["user_id", "time", "revenue"])
    s = summary_data_from_transaction_data(o, "user_id", "time", monetary_value_col="revenue",
                                           observation_period_end=AS_OF, freq="D")
    seconds = time.perf_counter() - t0
    print(json.dumps({"op": "rfm_lifetimes", "impl": "lifetimes", "seconds": seconds,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": len(s)}))
