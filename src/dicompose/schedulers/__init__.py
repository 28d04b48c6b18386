"""Where tasks run: an in-process thread pool (default) or Dask (LocalCluster, tcp://, SLURM)."""
