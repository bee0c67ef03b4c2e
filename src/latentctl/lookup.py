"""Which model folder a ``--model`` value names: a path, a registered name, or a Hub repository.

Kept apart from ``registry`` (names to folders) and ``hub`` (which registers what it pulls), since it
needs both: a Hub model is pulled into the Hub cache and registered on first use.
"""

from __future__ import annotations

import re
from pathlib import Path

from latentctl import console, hub, paths, registry
from latentctl.errors import LatentctlError

# A Hub model id, user/repo[@revision]: what a --model value that is neither a folder nor a name may be
HUB_ID = re.compile(r"(?P<repo_id>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[\w./-]+))?")


def resolve_model(value: str | Path | None, default: str) -> Path:
    """Return the model folder a ``--model`` value names: an existing path, a registered name, or a Hub
    model ``user/repo[@revision]``, pulled into the Hub cache and registered on first use; without a value,
    ``$LATENTCTL_HOME/models/DEFAULT``.

    A value that is none of these comes back as a path, so that loading it reports "no model at ...".
    """
    if value is None:
        return paths.model_dir(default)
    value = Path(value).as_posix()
    path = Path(value).expanduser()
    if path.exists():
        return path
    entry = registry.find(value)
    if entry is not None and entry.path.exists():
        return entry.path
    if entry is not None and not entry.hub:
        raise LatentctlError(f"{value} is registered at {entry.path}, which no longer exists",
                             hint=f"'latentctl models rm {value}' forgets it")
    if entry is not None:  # pulled before, and its files have left the Hub cache since: pull it again
        console.info(f"{value} is no longer in the Hub cache: pulling {entry.hub['repo_id']} again")
        return hub.pull(entry.hub["repo_id"], entry.hub.get("revision"), name=entry.name).path
    hub_id = HUB_ID.fullmatch(value)
    if hub_id is None:
        return path
    console.info(f"{value} is not a folder or a registered name here: pulling it from the Hugging Face Hub")
    try:
        return hub.pull(hub_id["repo_id"], hub_id["revision"]).path
    except LatentctlError as error:
        raise LatentctlError(f"no model at {value}: no such folder or registered name, and from the Hub: "
                             f"{error.message}", hint=error.hint) from None
