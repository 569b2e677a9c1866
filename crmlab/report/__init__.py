"""Scheduled reports: run the notebooks in ``notebooks/`` with Papermill, export self-contained
HTML without code, keep the last good report when a run fails, and index every week.

Command line: ``python -m crmlab report weekly --week 2026-W47 --params params/weekly.yaml``
(see ``python -m crmlab report --help``).
"""
from .params import ParamError, last_complete_week, notebook_parameters, parse_week, validate
from .registry import NOTEBOOKS
from .runner import Outcome, available, plan, run_notebook, run_reports, select

__all__ = ["ParamError", "last_complete_week", "notebook_parameters", "parse_week", "validate",
           "NOTEBOOKS", "Outcome", "available", "plan", "run_notebook", "run_reports", "select"]
