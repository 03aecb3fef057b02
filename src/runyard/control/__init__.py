"""The control plane: resources, their rules and state machines, quotas and tags.

Pure of I/O libraries: it talks to persistence only through control.ports.
"""
