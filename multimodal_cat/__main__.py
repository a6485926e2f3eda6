"""Allow ``python -m multimodal_cat``."""

from __future__ import annotations

import sys

from multimodal_cat.cli.main import main

sys.exit(main())
