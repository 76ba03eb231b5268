"""``python3 -m gis.cli``: the ``renewal`` command."""
from gis.cli.main import run

run()
