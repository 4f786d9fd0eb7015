"""The collector's HTTP face: app assembly, tokens, and one router module per resource."""
