"""The boot, measured alone: `make -C packer boot-bench RUNS=N` boots the
provisioned image N times as test_vm.py does (two VMs at once, the off one
with its clock ahead and its reference silent until nowd answers) and
prints, per run, /healthz 200 after qemu's start and systemd's own split,
then the median. The figures in packer/README.md, "Boot time", come from it.

Not part of `make test`: it proves nothing the VM test does not; it only
repeats the boot, which varies by several seconds from run to run.
"""

import os
import statistics
from concurrent.futures import ThreadPoolExecutor

from conftest import figure
from test_vm import boot, boot_off, two_machines


def test_boot_time(provisioned_root, work):
    runs = int(os.environ.get("RUNS", "3"))
    new_s, off_s = [], []
    for n in range(runs):
        with two_machines(provisioned_root, work / f"run-{n}") as (new, off):
            with ThreadPoolExecutor(2) as pool:
                for f in [pool.submit(boot, new), pool.submit(boot_off, off)]:
                    f.result()
            split = new.vm.sh("systemd-analyze", timeout=60)[1].splitlines()[0]
        new_s.append(new.timeline["first_200"])
        off_s.append(off.timeline["first_200"])
        figure(
            f"run {n + 1}: healthz 200 after",
            f"{new_s[-1]:.1f} s (off instance {off_s[-1]:.1f} s); {split}",
        )
    figure(
        f"median of {runs}: healthz 200 after",
        f"{statistics.median(new_s):.1f} s (off instance {statistics.median(off_s):.1f} s)",
    )
