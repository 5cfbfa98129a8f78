"""``python -m hostaway_pipeline``: the ``hostaway-pipeline`` command, for child processes of this interpreter."""

from hostaway_pipeline.cli import main

raise SystemExit(main())
