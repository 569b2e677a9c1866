"""Do two runs of the weekly report say the same thing? Compares every text and HTML output
(tables, sentences, headings; the "generated at" time masked) and the number of plots of each
executed notebook of two report folders.

    python -m bench.compare_reports reports-before/2026-W47 reports-after/2026-W47
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

NOTEBOOKS = ("weekly_uplift", "message_performance")


def outputs(path: Path) -> list[str]:
    nb = json.loads(Path(path).read_text())
    out = []
    for c in nb["cells"]:
        if c["cell_type"] != "code" or "injected-parameters" in c["metadata"].get("tags", []):
            continue
        for o in c.get("outputs", []):
            if o.get("name") == "stderr":  # warnings are not findings
                continue
            d = o.get("data", {})
            t = d.get("text/html") or o.get("text")
            if isinstance(t, list):
                t = "".join(t)
            if t:
                out.append(re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", "GENERATED", t))
            if "image/png" in d:
                out.append("<plot>")
    return out


def compare(a: Path, b: Path, names=NOTEBOOKS) -> dict[str, bool]:
    return {n: outputs(Path(a) / f"{n}.ipynb") == outputs(Path(b) / f"{n}.ipynb") for n in names}


if __name__ == "__main__":
    res = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps(res))
    raise SystemExit(0 if all(res.values()) else 1)
