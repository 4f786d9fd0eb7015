"""The wrapper: patching the openai SDK, recording each call, streams, extraction, batch results, building spans."""
