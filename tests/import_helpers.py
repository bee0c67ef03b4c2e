"""What the tests of `latentctl models import` share: a tripwire against unpickling, and an import that must work."""

from __future__ import annotations

import json


class Tripwire:
    """An object whose unpickling would be noticed: it must never happen."""

    unpickled = False

    def __setstate__(self, state: dict) -> None:
        Tripwire.unpickled = True


def imported(cli, *args) -> dict:
    result = cli("models", "import", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
