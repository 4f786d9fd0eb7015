"""Tests of the wrapper apps import: patching, calls, streams, batch results, export and spool."""
