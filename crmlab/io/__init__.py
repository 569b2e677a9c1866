"""The infrastructure layer: everything between a shop's data and the analyses.

- :mod:`~crmlab.io.errors`: ``DataError`` (a row rule broken) and ``ParamError`` (a setting);
- :mod:`~crmlab.io.schema`: the canonical tables, their columns and rules;
- :mod:`~crmlab.io.shopdata`: ``ShopData``, the five tables of one shop;
- :mod:`~crmlab.io.engine`: connections (DuckDB by default), readers for every source, the one
  ``as_of`` cut and interval rule, exclusion counts;
- :mod:`~crmlab.io.validate`: the strict boundary every analysis reads through;
- :mod:`~crmlab.io.trust`: which tables a report run has already validated;
- :mod:`~crmlab.io.checks`: argument checks shared by every public function;
- :mod:`~crmlab.io.shopfile`: reading ``shop.yaml``;
- :mod:`~crmlab.io.sources`: adapters from vendors' exports (GA4, Shopify, Cafe24, Braze,
  Kakao/SMS receipts) to the canonical tables.

Nothing here imports the analyses, the statistics or the report (``tests/test_layers.py``).
This ``__init__`` imports nothing, so a statistics module can use :mod:`~crmlab.io.checks`
without loading the engine.
"""
