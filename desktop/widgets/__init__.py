"""Reusable widgets and Qt item models shared by pages and dialogs: no page logic and no SQL (what one loads,
it loads through :mod:`desktop.background`)."""
