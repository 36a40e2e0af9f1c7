"""The `vex` command line."""
