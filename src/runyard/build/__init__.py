"""Build: turns a service's source into immutable, content-addressed artifacts."""
