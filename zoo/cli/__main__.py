"""``python -m zoo.cli`` (and ``torchrun -m zoo.cli ...``): the ``zoo`` command."""
import sys

from . import main

sys.exit(main())
