"""``python3 -m gis.cli``: the ``renewal`` command."""
import sys

from gis.cli.main import main

sys.exit(main())
