"""PACS I/O: DICOM networking (C-ECHO, C-FIND, C-GET, C-MOVE, C-STORE through pynetdicom)."""
