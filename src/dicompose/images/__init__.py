"""Container images: base image from Debian packages, hash-locked wheelhouse, Dockerfile/Apptainer definitions."""
