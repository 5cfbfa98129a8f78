"""Entry point for ``python -m hostaway_pipeline.simulator serve ...``."""

from hostaway_pipeline.simulator.cli import main

raise SystemExit(main())
