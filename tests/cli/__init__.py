"""Tests of the command line: the demo, loading sample data, start-up and shutdown."""
