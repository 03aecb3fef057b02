"""The web console: server-rendered pages over the same control-plane commands as the API."""
