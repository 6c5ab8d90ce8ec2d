"""``python -m plugin.app.cli``: the same as the ``kindly`` command."""

from plugin.app.cli import main

main()
