"""Fixtures of the local-stack tests: a fresh environment for running the demo as real processes."""

from hostaway_pipeline_tests.local.demo_processes import demo_environment  # noqa: F401 - a fixture, used by name
