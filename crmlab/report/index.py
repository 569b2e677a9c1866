"""``reports/index.html``: every week's reports, newest week first, self-contained.

Everything taken from the file system or a manifest (file names, titles, languages, times) is
escaped with :func:`html.escape` and, in links, percent-encoded: a crafted file name such as
``<img src=x onerror=alert(1)>.html`` is shown as text and never runs.
"""
from __future__ import annotations

import html
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import quote

from .publish import TMP_PREFIX, read_manifest
from .registry import order_key

_WEEK_DIR = re.compile(r"[0-9]{4}-W[0-9]{2}")

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
.partial {{ color: #8a5a00; }}
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


def _href(week: str, file: str) -> str:
    """A relative link, percent-encoded and attribute-escaped."""
    return html.escape(f"{quote(week)}/{quote(file)}", quote=True)


def _line(wd: Path, n: str, entry: dict | None) -> str:
    esc = html.escape
    line = ""
    if (wd / f"{n}.html").exists():
        meta = ""
        if entry and entry.get("executed"):
            when = str(entry["executed"]).replace("T", " ")[:16] + " UTC"
            meta = f' <span class="meta">{esc(when)} · {esc(str(entry.get("lang", "")))}</span>'
        if entry and entry.get("partial"):
            meta += ' <span class="partial">partial data / 불완전한 데이터</span>'
        line = f'<a href="{_href(wd.name, n + ".html")}">{esc(_title(n, entry))}</a>{meta}'
    if (wd / f"{n}.failed.ipynb").exists():
        fail = (f' <span class="failed">latest run failed / 최근 실행 실패: '
                f'<a href="{_href(wd.name, n + ".failed.ipynb")}">{esc(n)}.failed.ipynb</a></span>')
        line = (line or esc(_title(n, entry))) + fail
    return f"<li>{line}</li>"


def write_index(out_dir: str | Path = "reports") -> Path:
    """Write ``<out_dir>/index.html`` linking every ``<week>/<name>.html`` (and flagging a
    notebook whose latest run failed, linking its ``.failed.ipynb``). Returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weeks = sorted((p for p in out_dir.iterdir() if p.is_dir() and _WEEK_DIR.fullmatch(p.name)),
                   key=lambda p: p.name, reverse=True)
    parts = []
    for wd in weeks:
        manifest = read_manifest(wd)
        names = sorted({p.name[:-len(".html")] for p in wd.glob("*.html") if not p.name.startswith(".")} |
                       {p.name[:-len(".failed.ipynb")] for p in wd.glob("*.failed.ipynb")}, key=order_key)
        items = [_line(wd, n, manifest.get(n)) for n in names]
        if items:
            parts.append(f"<h2>{html.escape(wd.name)}</h2>\n<ul>\n" + "\n".join(items) + "\n</ul>")
    body = "\n".join(parts) if parts else "<p>No reports yet. / 아직 리포트가 없습니다.</p>"
    path = out_dir / "index.html"
    # a unique temporary name: two writers never write into the same temporary file
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}index-", suffix=".html", dir=str(out_dir))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_PAGE.format(body=body))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the index is for everyone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
