"""Where instances run, behind one small interface (`base.RuntimeBackend`)."""
