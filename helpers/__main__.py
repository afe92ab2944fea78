"""``python -m helpers``: the same as the ``coalmine`` command."""

from .cli import main

raise SystemExit(main())
