"""Pure DICOM operations: reading (with decompression), the normalize kernel, derived-object headers, writing."""
