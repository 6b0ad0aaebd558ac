"""Analyses behind the paper's tables and figures (docs/method.md §6): features of finished runs,
statistics on them, table building, figures, the per-item specifications that tie them together, and
the sweep summary. Jobs and cells (one configuration's runs) are modelled once, in ``runs``."""
