"""Work off the GUI thread: the one task runner, and the plain functions it runs."""
