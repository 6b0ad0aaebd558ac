"""Analyses behind the paper's tables and figures (METHOD.md §6): features of finished runs,
statistics on them, table building, figures, and the per-item specifications that tie them together."""
