"""Exporting spans to the collector: configure(), the batching processor, the OTLP sender and the on-disk spool."""
