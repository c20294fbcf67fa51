"""resilq.faultsim.allocator: in a process started the way Dask's nanny starts workers
(MALLOC_TRIM_THRESHOLD_=65536), every freed multi-MB array goes back to the kernel and the next one faults its
pages in again; once tuned, freed arrays are reused. Counted in page faults, not seconds."""

import os
import subprocess
import sys

import pytest

CHILD = """
import resource, sys
import numpy as np
from resilq.faultsim.allocator import tune_for_arrays
if sys.argv[1] == "tuned":
    assert tune_for_arrays() and tune_for_arrays()
a = np.ones(1 << 18)  # warm up numpy's own paths
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    a = np.ones(1 << 18)  # 2 MiB, allocated, touched and freed
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="65536")
    done = subprocess.run([sys.executable, "-c", CHILD, mode], env=env, capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tuned_allocator_reuses_freed_arrays_instead_of_faulting_them_in_again():
    untuned, tuned = _faults("plain"), _faults("tuned")
    assert untuned >= 200  # a fresh mapping per array, faulted in again each time (512 pages of 4 KiB here)
    assert tuned * 20 < untuned
