"""Executed notebook -> self-contained HTML for stakeholders.

nbconvert's ``lab`` template loads require.js, MathJax, mermaid and the widget manager from a
CDN. A report must open offline and fetch nothing, so the template below extends ``lab`` and
blanks those blocks; code cells and prompts are dropped (``exclude_input``), as are cells tagged ``remove_cell`` (notes for analysts); images are
already embedded as ``data:`` URIs by nbconvert. :func:`external_refs` lists anything that
would still be fetched, and :func:`notebook_to_html` refuses to write a page that has any.
"""
from __future__ import annotations

import html as _html
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat

TEMPLATE_NAME = "crmlab_report.html.j2"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

_CSS = """
body.jp-Notebook { max-width: 1100px; margin: 0 auto; padding: 1.5rem 2rem;
  font-family: "NanumGothic", "Noto Sans KR", "Apple SD Gothic Neo", "Malgun Gothic", system-ui, sans-serif; }
.jp-OutputArea-output table { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0 1rem; }
.jp-OutputArea-output th, .jp-OutputArea-output td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }
.jp-OutputArea-output th { background: #f4f6f8; }
.crm-summary { background: #f2f7ff; border-left: 4px solid #2b6cb0; padding: 0.8rem 1.2rem; margin: 1rem 0; }
.crm-summary li { margin: 0.3rem 0; }
.crm-note { color: #555; }
.crm-warn { background: #fff8e6; border-left: 4px solid #d69e2e; padding: 0.5rem 1rem; }
.crm-meta { color: #666; font-size: 0.9rem; }
.crm-partial { background: #fdecea; border: 2px solid #b00020; color: #5f0010; padding: 0.8rem 1.2rem;
  margin: 0 0 1rem; font-weight: bold; }
"""

TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<style type="text/css">""" + _CSS + r"""</style>{%- endblock extra_css -%}
"""

#: Elements whose attribute makes the browser fetch something when the page opens.
_FETCHING = {"script": ("src",), "img": ("src", "srcset"), "iframe": ("src",), "source": ("src", "srcset"),
             "video": ("src", "poster"), "audio": ("src",), "link": ("href",), "embed": ("src",),
             "object": ("data",), "input": ("src",), "track": ("src",)}
_REMOTE = re.compile(r"""^\s*((?:https?:)?//\S+)""", re.IGNORECASE)
_CSS_URL = re.compile(r"""(?:@import\s+(?:url\(\s*)?|url\(\s*)["']?((?:https?:)?//[^"')\s]+)""", re.IGNORECASE)


class _Refs(HTMLParser):
    """Walks the markup: fetching attributes, ``<style>`` contents and ``style=`` attributes.
    Text (table cells, sentences) is never looked at, so an escaped ``@import`` in a campaign
    name is not mistaken for a stylesheet import."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._style = 0

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in _FETCHING.get(tag, ()):
                for part in value.split(",") if name == "srcset" else [value]:
                    m = _REMOTE.match(part)
                    if m:
                        self.found.append(m.group(1).split()[0])
            elif name == "style":
                self.found += _CSS_URL.findall(value)
        if tag == "style":
            self._style += 1

    def handle_endtag(self, tag):
        if tag == "style" and self._style:
            self._style -= 1

    def handle_data(self, data):
        if self._style:
            self.found += _CSS_URL.findall(data)


def external_refs(html: str) -> list[str]:
    """URLs an HTML page would fetch when opened: script/link/img/iframe... sources on another
    host, and CSS ``@import``/``url()`` of remote resources in ``<style>`` or ``style=``. Plain
    ``<a href>`` links are not fetched and not listed; neither is any text of the page."""
    parser = _Refs()
    parser.feed(html)
    parser.close()
    return parser.found


def _exporter(lang: str = "en"):
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({TEMPLATE_NAME: TEMPLATE})])
    exporter.template_file = TEMPLATE_NAME
    from nbconvert.preprocessors import TagRemovePreprocessor
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"remove_cell", "remove-cell"}), enabled=True)
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    exporter.language_code = lang
    return exporter


def notebook_to_html(nb: nbformat.NotebookNode | str | Path, out: str | Path | None = None, *,
                     lang: str = "en", title: str | None = None, banner: str | None = None) -> str:
    """Render an executed notebook as a self-contained HTML page without code cells.

    Parameters
    ----------
    nb : notebook or path
        The executed notebook.
    out : path, optional
        Where to write the page.
    lang : {"en", "ko"}
        The page's ``<html lang>``.
    title : str, optional
        The page's title (default: the notebook's metadata title or name).
    banner : str, optional
        Plain text shown above everything else in a red box (a report published with
        ``--allow-partial``); escaped.

    Raises
    ------
    RuntimeError
        If the page would still fetch anything from the network.
    """
    if not isinstance(nb, nbformat.NotebookNode):
        nb = nbformat.read(str(nb), as_version=4)
    nb = nbformat.from_dict(nb)  # a copy
    # widget state would make nbconvert add the CDN widget manager; reports are static.
    nb.metadata.pop("widgets", None)
    # warnings and log lines (stderr) are for analysts: they stay in the .ipynb, not in the page;
    # so do live widgets (a notebook run outside the CLI may have built them): a page has no kernel.
    for cell in nb.cells:
        if cell.get("outputs"):
            cell.outputs = [o for o in cell.outputs
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                            and WIDGET_MIME not in o.get("data", {})]
    if title:
        nb.metadata["title"] = title
    html, _ = _exporter(lang).from_notebook_node(nb)
    if banner:
        box = f'<div class="crm-partial" role="alert">{_html.escape(banner)}</div>'
        html = re.sub(r"(<body\b[^>]*>)", lambda m: m.group(1) + box, html, count=1)
    bad = external_refs(html)
    if bad:
        raise RuntimeError(f"report HTML would fetch from the network: {bad[:5]}")
    if out is not None:
        Path(out).write_text(html, encoding="utf-8")
    return html
