"""Fetching code: git and provider adapters."""
