# pytest: tests/ is on sys.path (this file's folder), so the long tests import `support`
# as the scripts do; the `slow` mark is declared in pyproject.toml.
