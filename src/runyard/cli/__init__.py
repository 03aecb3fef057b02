"""`runyard` commands: thin over app.py."""
