"""The QC report of a run (``dicompose report``): pages and figures people look at. Light at import: the CLI
checks for an earlier report (its marker) without loading pydicom, numpy or matplotlib."""

#: The file that marks a folder as a report dicompose wrote (so it may be replaced, and nothing else is).
MARKER = ".dicompose-report"
