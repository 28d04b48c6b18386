"""Boutiques descriptors and invocations: load, validate, resolve command lines. Imports only ``errors``."""
