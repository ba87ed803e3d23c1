"""The `paktum` command: run everything on one machine, import folders, and each service's tasks."""
