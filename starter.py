"""The ops CLI, run from a checkout: ``python starter.py --help``.

Installed, the same CLI is the ``offboarding`` command; it lives in ``offboarding/cli``.
"""

from offboarding.cli.main import main

if __name__ == "__main__":
    main()
