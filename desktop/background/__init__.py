"""Work off the GUI thread: the one task runner (:mod:`.tasks`) and the plain functions it runs.

``jobs`` holds the window's long jobs (import, analysis, index rebuilds); ``sync_jobs`` runs connector
coroutines on a worker's own event loop and schedules syncs; every other ``*_jobs`` module holds the workers
of one page or dialog. Workers open their own session, hand back frozen rows and never touch a widget.
"""
