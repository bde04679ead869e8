"""Project hooks (none yet beyond those of the installed plugins)."""
