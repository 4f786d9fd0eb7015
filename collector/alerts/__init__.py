"""Alerts: rules, their evaluation on the collector, their state and events, and notifications."""
