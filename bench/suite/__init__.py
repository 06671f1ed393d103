"""The benchmark suite: every group of measurements, the reference systems, the page and charts.

Run it as ``python -m bench`` (full), ``python -m bench --quick`` or ``--only GROUP``.
"""
