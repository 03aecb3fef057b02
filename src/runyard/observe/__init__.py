"""Observe: what a service tells its owner about itself (log groups and streams, as App Runner names them)."""
