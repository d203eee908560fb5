"""The validation kit (OPS-4, 11.10(a)): installation and operational qualification.

``iq`` records what is installed and how it is configured; ``oq_checks`` are
the operational checks, run by ``runner`` against a scratch data directory and
the simulated plant (``scratch``); ``report_pdf`` writes the human-readable
report. ``hmi validate`` (hmi/cli/validate.py) ties them together.
"""
