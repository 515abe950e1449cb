"""The cyclic garbage collector, tuned for a console that shares its process with a big engine.

Once the engine runs and the console has built its panels, most objects in the process live as long as it
does: the running config, the IPVS table, the check policy, the rows of the virtual-server table (hundreds of
thousands of containers at 10,000 real servers). A full collection traverses all of them, about 150 ms at that
size, and by default one comes every few seconds under the allocation rate of a 1 Hz refresh: the keys typed
meanwhile wait. ``settle`` moves what exists to the permanent generation (never traversed again; still freed
by reference counting) and lets full collections come ten times less often; what is allocated afterwards is
collected as usual.

Called by the console's entry points only (``lvsconsole``, ``lvsconsole attach``): a test process or a library
user keeps the interpreter's defaults.
"""

from __future__ import annotations

import gc

FULL_COLLECTION_EVERY = 100
"""Young-generation-1 collections between two full ones (the interpreter's default is 10)."""


def settle() -> None:
    """Freeze the objects alive now and space out full collections (see the module docstring)."""
    gc.collect()  # what is garbage now is not frozen with the rest
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
