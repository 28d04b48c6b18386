"""Imported by the built-in tools' multiprocessing forkserver (``set_forkserver_preload``): the forkserver dies
with the tool process that started it, and pool workers (set up by ``die_with_parent`` as their initializer)
die with the forkserver; and the forkserver's allocator tuning (``allocator``) is inherited by every worker.
Importing this module has those side effects, on purpose."""

from dicompose.allocator import keep_freed_buffers
from dicompose.lifetime import die_with_parent

die_with_parent()
keep_freed_buffers()
