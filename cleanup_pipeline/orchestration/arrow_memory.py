"""Where Arrow's buffers (the snapshot's columns, pandas' string columns) get their memory in the
processes that run the job."""

import os

import pyarrow as pa

# pyarrow's own variable: an operator who sets it keeps the pool it names. Unset, the package
# sets it to "system" when first imported (cleanup_pipeline/__init__.py).
POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def use_system_allocator() -> str:
    """Arrow's buffers from the C library's malloc instead of the mimalloc pool pyarrow bundles,
    unless `ARROW_DEFAULT_MEMORY_POOL` names another pool. Returns the backend in use.

    The job's Arrow buffers are small (under 2 MiB of columns for 20,000 users), but mimalloc
    keeps a heap for each thread that allocates, and the scan decodes its segments in four
    threads: on the 20,000-user benchmark world the run process stayed 17-22 MiB larger after the
    scan with mimalloc than with malloc. Decoding 1,000,000 items took the same CPU time with
    either, within the noise of the machine (1.7-2.1 s).

    The variable, set by the package before pyarrow is imported, already makes "system" Arrow's
    default everywhere; this covers a process that imported pyarrow before the package, where
    Arrow had already read the variable: pyarrow's own allocations at least use malloc.
    """
    if os.environ.get(POOL_VARIABLE, "system") == "system":
        pa.set_memory_pool(pa.system_memory_pool())
    return pa.default_memory_pool().backend_name
