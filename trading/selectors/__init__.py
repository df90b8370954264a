"""Every read of the trading schema that the API, admin and tasks share. One module per concern."""
