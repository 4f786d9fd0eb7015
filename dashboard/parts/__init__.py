"""What pages share: charts, the sidebar filters, number formats, empty states, the auto-refreshing body, and the
Alerts page's rule form and tables."""
