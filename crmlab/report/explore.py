"""ipywidgets controls for exploring a report in JupyterLab.

The static view is always rendered first by the notebook; :func:`controls` adds widgets only
when the notebook runs live (``Report.interactive``), so an HTML report never depends on a
widget manager or a running kernel.
"""
from __future__ import annotations

from typing import Any, Callable


def controls(rep, render: Callable[..., None], **widgets_spec: Any) -> bool:
    """Show widgets whose values are passed to ``render(**values)`` on every change.

    Each keyword is a control: a list/tuple of options makes a dropdown, ``(lo, hi, step)`` of
    numbers (or ``(lo, hi, step, value)``) a slider, a bool a checkbox, a string a text box, and an ipywidgets widget is used
    as is. Returns False (and shows a short note instead) when not running live.
    """
    if not rep.interactive:
        rep.note("explore_note")
        return False
    import ipywidgets as W
    from IPython.display import display

    ws: dict[str, Any] = {}
    for name, spec in widgets_spec.items():
        if isinstance(spec, W.Widget):
            ws[name] = spec
        elif isinstance(spec, bool):
            ws[name] = W.Checkbox(value=spec, description=name)
        elif isinstance(spec, tuple) and len(spec) in (3, 4) and all(isinstance(v, (int, float)) for v in spec):
            lo, hi, step = spec[:3]
            value = spec[3] if len(spec) == 4 else lo
            cls = W.IntSlider if all(isinstance(v, int) for v in spec) else W.FloatSlider
            ws[name] = cls(min=lo, max=hi, step=step, value=value, description=name)
        elif isinstance(spec, (list, tuple)):
            ws[name] = W.Dropdown(options=list(spec), description=name)
        else:
            ws[name] = W.Text(value=str(spec), description=name)
    out = W.interactive_output(render, ws)
    display(W.VBox([W.HBox(list(ws.values())), out]))
    return True

