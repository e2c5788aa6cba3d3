"""python -m benchmarks.check_clocks: does this machine's CPU clock see a busy thread and an idle wait
as the benchmark's cpu_per_wall needs (measure._epochs)? Prints both ratios; exits 1 if the busy fit
reads under 0.4 cores or over 1.3, or the waiting one over 0.3 (a loaded machine can do that: rerun
when it is quieter). A timing check, so here and not in the tests."""

import sys
import time

from benchmarks import measure


def busy(seconds=0.15):
    """One thread computing for `seconds`."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def main():
    idle = measure._epochs(lambda: time.sleep(0.15), 2)["cpu_per_wall"]
    computing = measure._epochs(busy, 2)["cpu_per_wall"]
    print(f"cpu_per_wall: one busy thread {computing:.2f}, a sleeping fit {idle:.2f}")
    return 0 if 0.4 < computing < 1.3 and idle < 0.3 else 1


if __name__ == "__main__":
    sys.exit(main())
