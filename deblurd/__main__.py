"""`python -m deblurd` is the `deblurd` command."""

import sys

from deblurd.cli import main

sys.exit(main())
