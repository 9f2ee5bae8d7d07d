"""Unit tests: functions and parsers, no worker process, no server."""
