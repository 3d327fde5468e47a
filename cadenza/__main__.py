"""``python -m cadenza``: the same command line as the ``cadenza`` script."""

from cadenza.runtime.cli import main

raise SystemExit(main())
