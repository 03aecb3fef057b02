"""Runyard: a self-hosted platform that speaks AWS App Runner's API."""

__version__ = "0.1.0"
