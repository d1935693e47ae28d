"""Pipeline wiring and the `lethe` command-line entry points."""
