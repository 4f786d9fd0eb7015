"""What pages share: charts, the sidebar filters, number formats, empty states and the auto-refreshing body."""
