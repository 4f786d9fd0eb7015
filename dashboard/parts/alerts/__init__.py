"""The Alerts page's parts: the rule draft and form (draft, channels, form, errors), its 7-day preview, the tables,
silences and acknowledgements."""
