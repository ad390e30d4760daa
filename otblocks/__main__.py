"""``python -m otblocks`` (what ``torchrun -m otblocks`` launches)."""

import sys

from .cli import main

sys.exit(main())
