"""Reusable widgets and Qt item models: no page logic, no store access."""
