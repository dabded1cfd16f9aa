"""``python -m roost.cli``: the same as the ``roost`` command."""

from roost.cli.main import main

main()
