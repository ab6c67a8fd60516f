"""``python -m bharatsend_core``: the ``bharatsend`` command line, without needing it on PATH."""

from bharatsend_core.cli import main

raise SystemExit(main())
