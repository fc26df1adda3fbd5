"""``python -m sparsedp``: the command line, as the ``sparsedp`` script."""

import sys

from sparsedp.cli.main import main

sys.exit(main())
