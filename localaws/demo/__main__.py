"""``python -m localaws.demo``: runs the demo (``localaws.demo.service.main``) and exits with its code."""

from __future__ import annotations

import sys

from localaws.demo.service import main

if __name__ == "__main__":
    sys.exit(main())
