"""The worker, run from a checkout (``python worker.py``) or the image.

Installed, the same worker is the ``offboarding-worker`` command; it lives in
``offboarding/worker.py``.
"""

import sys

from offboarding.worker import main

if __name__ == "__main__":
    sys.exit(main())
