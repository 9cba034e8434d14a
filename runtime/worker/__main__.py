from __future__ import annotations

import logging
import sys

from ..config import Settings
from .modes import once, poll


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    return once(settings) if settings.worker_mode == "once" else poll(settings)


if __name__ == "__main__":
    sys.exit(main())
