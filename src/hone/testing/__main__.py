"""`python -m hone.testing`: the same as `python -m hone.testing.openai_server`."""

import sys

from .openai_server import main

sys.exit(main())
