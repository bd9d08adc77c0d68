"""Configs saved by runs begun before the judge section became a union on `method`.

Such a run's `config.yaml` holds the old flat judge section with every field of
every method (`to_yaml` wrote them all) and the server keys at its top level
(`model_name`, `server_timeout`, ...). Resuming, exporting or reporting that run
must still read it, so `upgrade_saved_judge` rewrites the section into the
current shape: the fields of its own method are kept, the server keys move
under `server` (with their saved values: the run keeps the timeouts it was
started with), and the other methods' fields, written only because the old
dump wrote everything, are dropped.

Only a full old dump is rewritten (it has every old server key): a config
written by hand with one stray old key still gets the one-line error that
says where that key moved.
"""

from __future__ import annotations

from typing import Any

from autodidact.config.judge import MOVED, RUN_CLASSES
from autodidact.config.judge_methods import METHOD_CLASSES, is_server_url

_RUN = {cls.model_fields["method"].default: cls for cls in RUN_CLASSES}
_MEMBER = {cls.model_fields["method"].default: cls for cls in METHOD_CLASSES}


def is_old_dump(section: Any) -> bool:
    """Whether a judge section is a whole pre-union dump: it holds every old flat server key."""
    return isinstance(section, dict) and set(MOVED) <= set(section)


def upgrade_saved_judge(section: Any, run_level: bool = True) -> Any:
    """The judge section of an old saved config in the current shape; any other section unchanged."""
    if not is_old_dump(section):
        return section
    method = section.get("method", "direct")
    cls = (_RUN if run_level else _MEMBER).get(method)
    if cls is None:
        return section  # an unknown method: validation names it
    upgraded: dict[str, Any] = {}
    server: dict[str, Any] = {}
    for key, value in section.items():
        if key in MOVED:
            server[MOVED[key].removeprefix("server.")] = value
        elif key not in cls.model_fields:
            continue  # another method's field
        elif key == "members":
            upgraded[key] = [upgrade_saved_judge(member, run_level=False) for member in value or []]
        elif key == "tasks":
            upgraded[key] = {name: upgrade_saved_judge(s, run_level=False) for name, s in (value or {}).items()}
        else:
            upgraded[key] = value
    if is_server_url(section.get("model")):  # elsewhere the old server keys held their unused defaults
        upgraded["server"] = server
    return upgraded


def upgrade_saved_config(data: dict[str, Any]) -> dict[str, Any]:
    """A config mapping with an old saved judge section rewritten (see the module docstring)."""
    if "judge" not in data:
        return data
    return data | {"judge": upgrade_saved_judge(data["judge"])}
