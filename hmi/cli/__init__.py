"""The ``hmi`` command. The only package that prints.

Commands never hang waiting for input that cannot come: when standard input
is not a terminal, a command that needs a password fails with a message
naming the option that supplies it.
"""

from hmi.cli import (
    accounts,
    backup,
    certs,
    config,
    package,
    plant,
    records,
    remote,
    report,
    validate,
    web,
)
from hmi.cli.common import main

__all__ = [
    "accounts",
    "backup",
    "certs",
    "config",
    "main",
    "package",
    "plant",
    "records",
    "remote",
    "report",
    "validate",
    "web",
]
