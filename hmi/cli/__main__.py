"""``python -m hmi.cli``: the ``hmi`` command."""

from hmi.cli import main

main()
