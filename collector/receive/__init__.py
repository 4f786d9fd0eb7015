"""Receiving OTLP: decoding request bodies (pure), and the HTTP and gRPC edges that feed the same ingest."""
