"""``python -m helpers``: the same as the ``coalmine`` command."""

from helpers.cli import main

raise SystemExit(main())
