"""Test tooling that is not a test: shared by the test suite and by scripts/ (never shipped)."""
