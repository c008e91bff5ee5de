"""Ticketing systems: one module per system on the framework in connectors/base.py."""
