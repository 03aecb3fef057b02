"""Resource dataclasses and their transition tables: values only, no I/O."""
