"""Test and demo helpers that ship with llmledger (stdlib only)."""
