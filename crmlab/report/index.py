"""``reports/index.html``: every week's reports, newest week first, self-contained."""
from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

_WEEK_DIR = re.compile(r"^\d{4}-W\d{2}$")

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>crmlab reports</title>
<style>
body {{ font-family: "NanumGothic", "Noto Sans KR", system-ui, sans-serif; max-width: 900px; margin: 2rem auto; padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.6rem; }} h2 {{ font-size: 1.2rem; margin-top: 1.6rem; border-bottom: 1px solid #ddd; }}
li {{ margin: 0.25rem 0; }} .meta {{ color: #777; font-size: 0.85rem; }} .failed {{ color: #b00020; }}
</style>
</head>
<body>
<h1>crmlab reports / 리포트</h1>
{body}
</body>
</html>
"""


def _title(name: str, entry: dict | None) -> str:
    if entry and entry.get("title"):
        return str(entry["title"])
    return name.replace("_", " ").capitalize()


def write_index(out_dir: str | Path = "reports") -> Path:
    """Write ``<out_dir>/index.html`` linking every ``<week>/<name>.html`` (and flagging a
    notebook whose latest run failed, linking its ``.failed.ipynb``). Returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weeks = sorted((p for p in out_dir.iterdir() if p.is_dir() and _WEEK_DIR.match(p.name)),
                   key=lambda p: p.name, reverse=True)
    parts = []
    for wd in weeks:
        manifest = {}
        mpath = wd / "manifest.json"
        if mpath.exists():
            try:
                manifest = json.loads(mpath.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                manifest = {}
        items = []
        names = sorted({p.name.split(".")[0] for p in wd.glob("*.html")} |
                       {p.name.split(".")[0] for p in wd.glob("*.failed.ipynb")})
        from .runner import NOTEBOOKS
        names.sort(key=lambda n: (list(NOTEBOOKS).index(n) if n in NOTEBOOKS else len(NOTEBOOKS), n))
        for n in names:
            entry = manifest.get(n)
            line = ""
            if (wd / f"{n}.html").exists():
                meta = ""
                if entry and entry.get("executed"):
                    when = str(entry["executed"]).replace("T", " ")[:16] + " UTC"
                    lang = str(entry.get("lang", ""))
                    meta = f' <span class="meta">{html.escape(when)} · {html.escape(lang)}</span>'
                line = f'<a href="{wd.name}/{n}.html">{html.escape(_title(n, entry))}</a>{meta}'
            if (wd / f"{n}.failed.ipynb").exists():
                fail = (f' <span class="failed">latest run failed / 최근 실행 실패: '
                        f'<a href="{wd.name}/{n}.failed.ipynb">{n}.failed.ipynb</a></span>')
                line = (line or html.escape(_title(n, entry))) + fail
            items.append(f"<li>{line}</li>")
        if items:
            parts.append(f"<h2>{wd.name}</h2>\n<ul>\n" + "\n".join(items) + "\n</ul>")
    body = "\n".join(parts) if parts else "<p>No reports yet. / 아직 리포트가 없습니다.</p>"
    path = out_dir / "index.html"
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(_PAGE.format(body=body), encoding="utf-8")
    os.replace(tmp, path)
    return path
