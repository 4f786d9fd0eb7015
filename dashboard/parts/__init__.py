"""What pages share: charts, the sidebar filters, number formats, empty states, the auto-refreshing body; alerts/
holds the Alerts page's parts."""
