"""Provenance of recorded runs as RO-Crates (Workflow Run Crate, Provenance Run Crate profile).

Built from the records alone (the index's run, attempts and pipeline snapshot), by small entity builders
(:mod:`.entities`) over ro-crate-py; :mod:`.export` reads the records and assembles the crate. It sits above
``pipeline`` only because a de-identifying run's snapshot is read back as a step graph to tell which files
may be named.
"""
