"""Subcommands of the `wsanalysis` CLI, one module each (discovered at start-up)."""
