"""Receiving OTLP: decoding request bodies (pure) and the gRPC edge; the HTTP edge is a router in collector.api."""
