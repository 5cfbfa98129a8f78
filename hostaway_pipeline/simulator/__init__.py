"""Local Hostaway API stand-in (real HTTP server, strict rate limits, faults, ground truth) for demos,
tests and benchmarks. Start with ``SimulatorServer`` or ``python -m hostaway_pipeline.simulator serve``."""

from hostaway_pipeline.simulator.server import SimulatorServer, parse_accounts_spec

__all__ = ["SimulatorServer", "parse_accounts_spec"]
