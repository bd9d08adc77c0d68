"""Reading hostile YAML: the size and alias-expansion bounds, duplicate keys, and Ctrl-C during a load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from autodidact.config import load_config
from autodidact.config.yaml_safe import MAX_BYTES, MAX_NODES, DuplicateKeyError, YAMLBombError, expanded_size, load_yaml
from autodidact.errors import AutodidactError


def laughs(levels: int, width: int = 9, key: str = "l") -> str:
    """Nested aliases: level i is `width` aliases of level i-1, so the last expands to width**levels values."""
    lines = [f"{key}0: &{key}0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"{key}{i}: &{key}{i} [" + ", ".join([f"*{key}{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_expanded_size_counts_every_alias_as_the_whole_anchor():
    node = yaml.compose("a: &a [x, y]\nb: [*a, *a]\n")
    # root 1 + key a 1 + [x, y] 3 + key b 1 + list 1 + two expansions of 3 = 13
    assert expanded_size(node) == 13


def test_a_billion_laughs_is_refused_while_composing_in_milliseconds():
    text = laughs(9)  # 9**9 values, 632 bytes
    start = time.process_time()
    with pytest.raises(YAMLBombError, match="more than 100,000 values"):
        load_yaml(text)
    assert time.process_time() - start < 5  # a hang guard only: the graph has 90 nodes


def test_aliases_just_under_the_bound_load_and_just_over_it_do_not():
    # 4 levels of width 17: 17**4 = 83521 leaves (and fewer than MAX_NODES nodes in all); 5 levels: 1.4 million
    assert len(load_yaml(laughs(4, width=17))["l3"]) == 17
    with pytest.raises(YAMLBombError):
        load_yaml(laughs(5, width=17))
    assert MAX_NODES == 100_000


def test_as_many_values_written_out_are_refused_without_blaming_aliases():
    with pytest.raises(YAMLBombError) as err:
        load_yaml("seeds: [" + "a, " * MAX_NODES + "a]\n")  # 300 KB, no alias
    assert str(err.value) == "it holds more than 100,000 values; check that it is the right file"


def test_an_alias_inside_its_own_anchor_is_refused():
    with pytest.raises(YAMLBombError, match="endless"):
        load_yaml("a: &a [1, *a]\n")


def test_aliases_and_merge_keys_of_an_ordinary_config_still_work():
    data = load_yaml("base: &base {batch_size: 8, epochs: 1.0}\ntraining:\n  <<: *base\n  batch_size: 4\n")
    assert data["training"] == {"batch_size": 4, "epochs": 1.0}  # a merged key may be overridden


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("seed: 1\nname: x\nseed: 2\n", "seed", (1, 3)),
        ("training:\n  lr: 1\n  batch_size: 8\n\n  batch_size: 9\n", "batch_size", (3, 5)),
        ("judge:\n  members:\n    - {method: direct, method: rubric}\n", "method", (3, 3)),
        ("1: a\n'1': b\n1: c\n", 1, (1, 3)),  # the int 1 and the string '1' are different keys
    ],
)
def test_a_duplicate_key_is_refused_with_both_lines(text, key, lines):
    with pytest.raises(DuplicateKeyError) as err:
        load_yaml(text)
    assert (err.value.key, err.value.lines) == (key, lines)


def test_the_config_file_error_names_the_key_and_both_lines(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("seed: 3\nstopping:\n  patience: 2\n\n\n\n\n\nseed: 9\n")
    with pytest.raises(AutodidactError) as err:
        load_config(path)
    assert str(err.value) == f"config file '{path}': key 'seed' appears twice (lines 1 and 9); remove one."


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * (MAX_BYTES // 10 + 1))
    with pytest.raises(AutodidactError) as err:
        load_config(path)
    assert str(err.value) == (
        f"config file '{path}' is 1.0 MB, over the 1 MB a config may be; check that it is the right file "
        "(prompts belong in a source file, tasks.sources)."
    )


def test_an_error_never_echoes_a_huge_value():
    with pytest.raises(AutodidactError) as err:
        load_config(None, ["tasks.names=" + "x" * 100_000])
    assert len(str(err.value)) < 300 and "100,002 characters" in str(err.value)


def test_a_byte_order_mark_and_an_empty_file_are_valid(tmp_path):
    bom = tmp_path / "bom.yaml"
    bom.write_text("\ufeffseed: 5\n", encoding="utf-8")
    assert load_config(bom).seed == 5
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set: every default\n")
    assert load_config(empty) == load_config()


def test_a_saved_run_config_is_read_through_the_same_loader(tmp_path):
    from autodidact.loop import resume

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(laughs(9))
    with pytest.raises(AutodidactError, match="config.yaml': aliases"):
        resume(run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml"]


# --- Ctrl-C ------------------------------------------------------------------------------------------

HOSTILE = {
    "billion-laughs": "judge:\n  method: program\n  program: regex\n  program_args:\n"
    + "".join("    " + line + "\n" for line in laughs(9, key="m").splitlines()),
    # the worst a file may do within the bounds: 83521 values that validate (any mapping is accepted here)
    "at-the-bound": "judge:\n  method: program\n  program: regex\n  program_args:\n"
    + "".join("    " + line + "\n" for line in laughs(4, width=17, key="m").splitlines()),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_ctrl_c_ends_a_run_of_a_hostile_config_within_seconds(tmp_path, name):
    config = tmp_path / "hostile.yaml"
    config.write_text(HOSTILE[name])
    command = [sys.executable, "-m", "autodidact.apps.cli", "run", str(config), "--set", f"output_dir={tmp_path}/runs",
               "--set", f"model.name={tmp_path}/no-model-here"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    interrupted = False
    try:
        proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        interrupted = True
    try:
        _, stderr = proc.communicate(timeout=20)  # a hang guard: it ends within seconds either way
    finally:
        if proc.poll() is None:
            proc.kill()
    if interrupted:  # it ended: 130 from the CLI, or a signal's code if Ctrl-C came during the imports
        assert proc.returncode != 0, stderr
    else:
        assert proc.returncode == 2 and stderr.count("error:") == 1 and "Traceback" not in stderr, stderr
