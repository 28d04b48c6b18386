"""Imported by the built-in tools' multiprocessing forkserver (``set_forkserver_preload``): the forkserver dies
with the tool process that started it, and pool workers (set up by ``die_with_parent`` as their initializer)
die with the forkserver. Importing this module has that one side effect, on purpose."""

from dicompose.lifetime import die_with_parent

die_with_parent()
