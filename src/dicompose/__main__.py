"""``python -m dicompose`` is the ``dicompose`` command."""

from dicompose.cli.main import main

main()
