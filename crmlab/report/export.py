"""Executed notebook -> self-contained HTML for stakeholders.

nbconvert's ``lab`` template loads require.js, MathJax, mermaid and the widget manager from a
CDN. A report must open offline and fetch nothing, so the template below extends ``lab`` and
blanks those blocks; code cells and prompts are dropped (``exclude_input``), as are cells tagged ``remove_cell`` (notes for analysts); images are
already embedded as ``data:`` URIs by nbconvert. :func:`external_refs` lists anything that
would still be fetched, and :func:`notebook_to_html` refuses to write a page that has any.
"""
from __future__ import annotations

import re
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
"""

TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<style type="text/css">""" + _CSS + r"""</style>{%- endblock extra_css -%}
"""

_EXTERNAL = re.compile(
    r"""<(?:script|link|img|iframe|source|video|audio)\b[^>]*?\b(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]+)""",
    re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+(?:url\()?["']?((?:https?:)?//[^"')\s]+)""", re.IGNORECASE)


def external_refs(html: str) -> list[str]:
    """URLs an HTML page would fetch when opened: script/link/img/iframe sources on another host,
    and CSS ``@import`` of remote sheets. Plain ``<a href>`` links are not fetched and not listed."""
    return _EXTERNAL.findall(html) + _CSS_IMPORT.findall(html)


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
                     lang: str = "en", title: str | None = None) -> str:
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
    bad = external_refs(html)
    if bad:
        raise RuntimeError(f"report HTML would fetch from the network: {bad[:5]}")
    if out is not None:
        Path(out).write_text(html, encoding="utf-8")
    return html
