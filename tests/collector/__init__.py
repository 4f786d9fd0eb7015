"""Tests of the collector: receiving, ingest, storage and lakes, money, alerts, readiness, the API."""
