"""Keeps a Postgres copy of many Hostaway accounts fresh and correct, on Dagster."""
