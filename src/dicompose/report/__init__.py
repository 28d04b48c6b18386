"""Visual QC reports of recorded runs (``dicompose report``): pages people look at rather than read."""
