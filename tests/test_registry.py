"""The local model registry: names for model folders, `models list/show/rm`, and what training registers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from latentctl import registry
from latentctl.data.synth_digits import synth_digits


def home_model(tiny_model: Path, isolated_home: Path, name: str) -> Path:
    folder = isolated_home / "models" / name
    shutil.copytree(tiny_model, folder)
    return folder


def external_model(tiny_model: Path, where: Path) -> Path:
    shutil.copytree(tiny_model, where)
    return where


def listing(cli) -> list[dict]:
    result = cli("models", "list", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["models"]


@pytest.mark.parametrize("command", [["models"], ["models", "list"], ["models", "show"], ["models", "rm"],
                                     ["models", "import"], ["hub"], ["hub", "push"], ["hub", "pull"]],
                         ids=" ".join)
def test_every_models_and_hub_command_has_help_with_examples(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0 and "Usage" in result.output
    if len(command) == 2:
        assert "latentctl " + command[0] in result.output.split("Examples")[1]


def test_list_shows_home_models_and_registered_ones_with_their_facts(cli, tiny_model, isolated_home, tmp_path):
    home_model(tiny_model, isolated_home, "digits")
    registry.register(external_model(tiny_model, tmp_path / "runs" / "other"), "trained")
    models = listing(cli)
    assert [(m["name"], m["source"]) for m in models] == [("digits", "home"), ("other", "trained")]
    first = models[0]
    assert (first["kind"], first["image_size"], first["channels"], first["epochs"]) == ("cgan", 28, 1, 1)
    assert first["labels"] == [str(d) for d in range(10)] and first["status"] == "ok"
    assert first["path"] == str(isolated_home / "models" / "digits")
    assert first["size_bytes"] > (tiny_model / "model.safetensors").stat().st_size
    assert 1000 < first["parameters"] < first["size_bytes"]  # float32: 4 bytes each
    assert models[1]["path"] == str((tmp_path / "runs" / "other").resolve())


def test_list_prints_a_table_on_stderr_and_nothing_on_stdout(cli, tiny_model, isolated_home):
    home_model(tiny_model, isolated_home, "digits")
    result = cli("models", "list")
    assert result.exit_code == 0 and result.stdout == ""
    assert "digits" in result.stderr and "cgan" in result.stderr and "28x28x1" in result.stderr


def test_an_empty_list_says_how_to_get_a_model(cli):
    result = cli("models", "list")
    assert result.exit_code == 0 and "no models yet" in result.stderr


def test_a_broken_model_is_listed_with_its_problem(cli, tiny_model, isolated_home, tmp_path):
    folder = registry.register(external_model(tiny_model, tmp_path / "broken"), "trained")
    (tmp_path / "broken" / "config.json").write_text("{")
    shutil.rmtree(external_model(tiny_model, tmp_path / "gone"))
    models = {m["name"]: m for m in listing(cli)}
    assert models[folder]["status"] == "invalid" and "not valid JSON" in models[folder]["problem"]
    assert "gone" not in models  # never registered


def test_a_registered_folder_that_was_deleted_is_listed_as_missing(cli, tiny_model, tmp_path):
    name = registry.register(external_model(tiny_model, tmp_path / "run"), "trained")
    shutil.rmtree(tmp_path / "run")
    assert {m["name"]: m["status"] for m in listing(cli)} == {name: "missing"}
    result = cli("sample", "--model", name, tmp_path / "x.png")
    assert result.exit_code == 1
    assert f"error: {name} is registered at {(tmp_path / 'run').resolve()}, which no longer exists" in result.stderr
    assert f"latentctl models rm {name}" in result.stderr


def test_training_elsewhere_registers_the_model_and_model_options_find_it_by_name(cli, tmp_path):
    synth_digits(tmp_path / "digits", n_train=64, n_test=16, seed=0)
    out = tmp_path / "runs" / "tiny-run"
    result = cli("train", "cgan", "--data-root", tmp_path / "digits", "--out", out, "--epochs", "1",
                 "--batch-size", "32", "--latent-dim", "8", "--gen-width", "4", "--disc-width", "4")
    assert result.exit_code == 0, result.output
    assert "registered as tiny-run" in result.stderr
    assert [(m["name"], m["source"], m["epochs"]) for m in listing(cli)] == [("tiny-run", "trained", 1)]
    sampled = cli("sample", "--model", "tiny-run", "--n", "4", tmp_path / "grid.png")
    assert sampled.exit_code == 0, sampled.output


def test_a_folder_in_latentctl_home_needs_no_entry(isolated_home, tiny_model):
    assert registry.register(home_model(tiny_model, isolated_home, "digits"), "trained") == "digits"
    assert not registry.registry_file().exists()


def test_the_same_folder_keeps_its_name_and_another_with_that_name_gets_a_suffix(tiny_model, isolated_home,
                                                                                tmp_path):
    home_model(tiny_model, isolated_home, "run")
    first = external_model(tiny_model, tmp_path / "a" / "run")
    assert registry.register(first, "trained") == "run-2"  # "run" is a folder of $LATENTCTL_HOME/models
    assert registry.register(first, "trained") == "run-2"
    assert registry.register(external_model(tiny_model, tmp_path / "b" / "run"), "trained") == "run-3"


def test_a_name_taken_by_another_folder_is_refused(tiny_model, tmp_path):
    from latentctl.errors import LatentctlError

    registry.register(external_model(tiny_model, tmp_path / "a"), "imported", name="mine")
    with pytest.raises(LatentctlError, match="the name mine is taken by"):
        registry.register(external_model(tiny_model, tmp_path / "b"), "imported", name="mine")


def test_show_prints_the_folder_on_stdout_and_the_config_with_json(cli, tiny_model, isolated_home):
    folder = home_model(tiny_model, isolated_home, "digits")
    plain = cli("models", "show", "digits")
    assert plain.exit_code == 0 and plain.stdout.strip() == str(folder)
    assert "kind" in plain.stderr and "cgan" in plain.stderr
    document = json.loads(cli("models", "show", "digits", "--json").stdout)
    assert document["name"] == "digits" and document["config"]["architecture"]["name"] == "dcgan"
    assert document["config"]["training"]["epochs"] == 1


def test_show_of_an_unknown_name_is_a_one_line_error(cli):
    result = cli("models", "show", "nothing")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no model is registered as nothing")


def test_rm_forgets_a_model_registered_from_elsewhere_and_keeps_its_files(cli, tiny_model, tmp_path):
    folder = external_model(tiny_model, tmp_path / "keep-me")
    name = registry.register(folder, "trained")
    result = cli("models", "rm", name)
    assert result.exit_code == 0 and f"its files stay in {folder.resolve()}" in result.stderr
    assert listing(cli) == [] and (folder / "model.safetensors").is_file()


def test_rm_of_a_home_model_asks_for_yes_without_a_terminal_then_deletes_it(cli, tiny_model, isolated_home):
    folder = home_model(tiny_model, isolated_home, "digits")
    refused = cli("models", "rm", "digits")
    assert refused.exit_code == 1 and "pass --yes" in refused.stderr and folder.is_dir()
    deleted = cli("models", "rm", "digits", "--yes", "--json")
    assert deleted.exit_code == 0 and json.loads(deleted.stdout)["deleted"] is True
    assert not folder.exists() and listing(cli) == []


def test_rm_of_an_unknown_name_is_an_error(cli):
    result = cli("models", "rm", "nothing", "--yes")
    assert result.exit_code == 1 and "no model is registered as nothing" in result.stderr


def test_an_invalid_registry_file_is_a_one_line_error(cli, isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "registry.json").write_text(json.dumps({"format": "latentctl.registry", "format_version": 1,
                                                             "models": {"x": {"path": 3}}}))
    result = cli("models", "list")
    assert result.exit_code == 1
    assert "is not a valid latentctl registry: the entry 'x' needs a \"path\"" in result.stderr
    assert "Traceback" not in result.output


def test_the_registry_file_is_plain_json_with_absolute_paths(tiny_model, tmp_path):
    registry.register(external_model(tiny_model, tmp_path / "run"), "trained")
    document = json.loads(registry.registry_file().read_text())
    assert document["format"] == "latentctl.registry" and document["format_version"] == 1
    assert document["models"]["run"]["path"] == str((tmp_path / "run").resolve())
    assert document["models"]["run"]["source"] == "trained"


def _register_many(home: str, folders: list[str]) -> None:
    import os

    os.environ["LATENTCTL_HOME"] = home
    from latentctl import registry as child_registry

    for folder in folders:
        child_registry.register(Path(folder), "trained")


def test_processes_registering_at_once_lose_no_entry(isolated_home, tmp_path):
    # Pipelines train several models side by side; each run registers its folder when it ends. Every
    # registration reads registry.json, adds its entry and writes it back: without a lock, two at once
    # would each write the file without the other's entry.
    import multiprocessing

    jobs = [[str(tmp_path / f"run{job}-{index}") for index in range(12)] for job in range(4)]
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_register_many, args=(str(isolated_home), folders)) for folders in jobs]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    registered = {entry.path.name for entry in registry.entries()}
    assert registered == {Path(folder).name for folders in jobs for folder in folders}
