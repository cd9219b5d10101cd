"""The pass/fail count the project's Python checkers share: `check(ok, what)` for each
check, `close(name)` prints 'name: N passed, N failed' and exits 1 if any failed."""

import sys


class Tally:
    def __init__(self, show_passes=True):
        self.passed = self.failed = 0
        self.show_passes = show_passes

    def check(self, ok, what):
        self.passed += bool(ok)
        self.failed += not ok
        if self.show_passes or not ok:
            print(("ok   " if ok else "FAIL ") + what, flush=True)

    def close(self, name):
        print("%s: %d passed, %d failed" % (name, self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


class Checks(Tally):
    """A Tally whose checks read `check(what, ok, detail)`: the detail is printed on a
    failure only (the browser, kernel and hub tests)."""

    def check(self, what, ok, detail=""):
        super().check(ok, what if ok else "%s: %s" % (what, str(detail)[:800]))
