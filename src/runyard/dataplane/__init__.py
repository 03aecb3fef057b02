"""The request path: HAProxy managed through its runtime API, never reloaded when instances change."""
