"""End-to-end tests: real runs in worker processes, servers over HTTP, Ray, the CLI in subprocesses."""
