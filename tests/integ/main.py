"""main.py - runs the integration suites against the real binary and prints the totals.

Usage: python3 tests/integ/main.py [suite ...]   (suites: see SUITES; default all)
Each suite is suite_<name>.py with a run() function that records checks in harness.R. A suite that
cannot go on (server did not start, unexpected exception) counts as one failed check and the
runner moves to the next. Prints one line per failed check, a line per suite, and ends with
"N passed, N failed"; exit status 1 when anything failed.
"""

import importlib
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import R  # noqa: E402

# Every suite_<name>.py beside this file, in name order.
SUITES = sorted(f[len('suite_'):-len('.py')]
                for f in os.listdir(os.path.dirname(os.path.abspath(__file__)))
                if f.startswith('suite_') and f.endswith('.py'))


def main(argv):
    names = argv or SUITES
    for n in names:
        if n not in SUITES:
            print('unknown suite %r (have: %s)' % (n, ' '.join(SUITES)))
            return 2
    if not os.access(harness.binary(), os.X_OK):
        print('FAIL setup: binary %s not found or not executable (run make first)'
              % harness.binary())
        print('0 passed, 1 failed')
        return 1
    for n in names:
        R.suite = n
        p0, f0, t0 = R.passed, R.failed, time.monotonic()
        try:
            importlib.import_module('suite_' + n).run()
        except harness.SuiteAbort as e:
            R.check('suite aborted', False, str(e))
        except Exception:  # a bug in a suite or an unexpected answer: report and go on
            tb = traceback.format_exc().strip().splitlines()
            R.check('suite raised', False, ' | '.join(ln.strip() for ln in tb[-7:]))
        finally:
            harness.kill_all_servers()
        print('== %s: %d ok, %d failing (%.1fs)'
              % (n, R.passed - p0, R.failed - f0, time.monotonic() - t0), flush=True)
    print('%d passed, %d failed' % (R.passed, R.failed))
    return 1 if R.failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
