"""``python -m reqon.demo``: serve the demo bookstore API (same as ``reqon.demo.server``)."""

from __future__ import annotations

import sys

from reqon.demo.server import main

sys.exit(main())
