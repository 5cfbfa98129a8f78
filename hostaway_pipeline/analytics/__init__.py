"""Analyst tables computed with pandas from the synced ``hostaway`` tables, written to ``hostaway_analytics``."""
