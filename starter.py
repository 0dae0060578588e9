"""The ops CLI, run from a checkout: ``python starter.py --help``.

Installed, the same CLI is the ``offboarding`` command; it lives in ``offboarding/cli``.
``python starter.py replay-check`` is the pre-deploy check (``offboarding/replay_check.py``,
installed as ``offboarding-replay-check``): it loads the workflow code, which the CLI
itself never imports.
"""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["replay-check"]:
        from offboarding.replay_check import main as replay_check

        del sys.argv[1]
        replay_check()
    from offboarding.cli.main import main

    main()
