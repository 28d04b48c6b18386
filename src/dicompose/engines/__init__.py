"""How one task runs: docker (SDK) | apptainer (argv) | local (subprocess), behind one small interface."""
