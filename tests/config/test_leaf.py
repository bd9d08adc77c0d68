"""Config is a leaf: importing it loads no heavy library and no other part of autodidact."""

from __future__ import annotations

import json
import subprocess
import sys

from autodidact.config.registry import BUILTIN_TASKS, EXTRACTORS, JUDGE_METHODS, PROGRAM_BUILTINS

PROBE = """
import json, sys
import autodidact.config
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('autodidact', 'torch', 'transformers', 'scipy', 'sklearn'))))
"""


def _modules_after(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_importing_config_loads_no_heavy_library_and_no_other_component():
    loaded = _modules_after(PROBE)
    assert not [m for m in loaded if m.split(".")[0] in ("torch", "transformers", "scipy", "sklearn")]
    project = [m for m in loaded if m.startswith("autodidact")]
    # autodidact itself (whose __init__ imports config) and errors; everything else is config's own.
    assert [m for m in project if m not in ("autodidact", "autodidact.errors") and not m.startswith("autodidact.config")] == []
    assert "autodidact.config.judge" in project  # not vacuous: the probe saw the package's modules


def test_importing_the_package_is_lazy_too():
    loaded = _modules_after(PROBE.replace("import autodidact.config", "import autodidact; autodidact.RunConfig"))
    assert "torch" not in loaded and "autodidact.loop" not in loaded


def test_each_components_map_has_the_names_config_accepts():
    from autodidact.judges import JUDGES
    from autodidact.judges.consistency import EXTRACTORS as EXTRACTOR_MAP
    from autodidact.tasks import TASKS
    from autodidact.verifiers import BUILTINS

    assert set(JUDGES) == set(JUDGE_METHODS)
    assert set(TASKS) == set(BUILTIN_TASKS)
    assert set(EXTRACTOR_MAP) == set(EXTRACTORS)
    assert set(BUILTINS) == set(PROGRAM_BUILTINS)


def test_lazy_names_of_the_package_resolve_to_the_loop():
    import autodidact
    import autodidact.loop

    assert autodidact.run is autodidact.loop.run and autodidact.RunResult is autodidact.loop.RunResult
