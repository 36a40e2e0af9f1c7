"""Serve/deploy entry points with schedules; never imported by the flow modules."""
