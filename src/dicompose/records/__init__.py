"""What happened: the workspace (index, locks, task folders), hashes, provenance, audit log."""
