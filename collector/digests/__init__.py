"""Digests: scheduled spend reports (daily, weekly, monthly) per team or any filter, sent through the alert channels."""
