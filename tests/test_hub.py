"""`latentctl hub push/pull` and Hub ids as --model values, against a local stand-in for the Hub.

The stand-in replaces the one seam latentctl talks to the Hub through (``latentctl.hub._api``): it keeps
repositories as folders and downloads into a cache laid out like huggingface_hub's, raising
huggingface_hub's own exceptions where the real client would.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import ModelCard, constants
from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

from latentctl import hub, registry

TOKEN = "hf_test_secret_do_not_leak_123"
NOT_FOUND = SimpleNamespace(headers={}, request=None, status_code=404)  # what HfHubHTTPError reads of a response


class FakeHub:
    """The HfApi methods latentctl uses, over local folders: remote/<repo>/<revision>/<files>."""

    def __init__(self, root: Path) -> None:
        self.remote, self.cache = root / "remote", root / "hub-cache"
        self.calls: list[str] = []
        self.private: dict[str, bool | None] = {}

    def create_repo(self, repo_id: str, *, private: bool | None = None, exist_ok: bool = False, **_: object):
        self.calls.append("create_repo")
        (self.remote / repo_id / "main").mkdir(parents=True, exist_ok=True)
        self.private.setdefault(repo_id, private)
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id: str, *, branch: str, exist_ok: bool = False, **_: object) -> None:
        self.calls.append("create_branch")
        if not (self.remote / repo_id / branch).exists():
            shutil.copytree(self.remote / repo_id / "main", self.remote / repo_id / branch)

    def create_commit(self, repo_id: str, operations, *, commit_message: str, revision: str | None = None,
                      **_: object):
        self.calls.append("create_commit")
        folder = self.remote / repo_id / (revision or "main")
        if not folder.is_dir():
            raise RevisionNotFoundError(f"no revision {revision}", response=NOT_FOUND)
        for operation in operations:
            content = operation.path_or_fileobj
            data = content if isinstance(content, bytes) else Path(content).read_bytes()
            (folder / operation.path_in_repo).write_bytes(data)
        oid = self.commit_of(repo_id, revision or "main")
        return SimpleNamespace(oid=oid, commit_url=f"https://huggingface.co/{repo_id}/commit/{oid}")

    def commit_of(self, repo_id: str, revision: str) -> str:
        digest = hashlib.sha1(revision.encode())
        for file in sorted((self.remote / repo_id / revision).iterdir()):
            digest.update(file.name.encode() + file.read_bytes())
        return digest.hexdigest()

    def snapshot_download(self, repo_id: str, *, revision: str | None = None, allow_patterns=None, **_: object) -> str:
        self.calls.append("snapshot_download")
        revision = revision or "main"
        cached = self.cache / f"models--{repo_id.replace('/', '--')}"
        if constants.HF_HUB_OFFLINE:
            ref = cached / "refs" / revision
            if not ref.is_file():
                raise LocalEntryNotFoundError("Cannot find an appropriate cached snapshot folder")
            return str(cached / "snapshots" / ref.read_text())
        if not (self.remote / repo_id).is_dir():
            raise RepositoryNotFoundError(f"404 {repo_id}", response=NOT_FOUND)
        source = self.remote / repo_id / revision
        if not source.is_dir():
            raise RevisionNotFoundError(f"404 {revision}", response=NOT_FOUND)
        commit = self.commit_of(repo_id, revision)
        snapshot = cached / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        for file in source.iterdir():
            if allow_patterns is None or any(fnmatch.fnmatch(file.name, p) for p in allow_patterns):
                shutil.copyfile(file, snapshot / file.name)
        (cached / "refs").mkdir(exist_ok=True)
        (cached / "refs" / revision).write_text(commit)
        return str(snapshot)


class Unreachable:
    """A Hub that must not be asked anything."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the Hub was called ({name}) although the model is cached and registered")


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    fake = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(hub, "_api", lambda: fake)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return fake


def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # huggingface_hub reads it once, at import


def push(cli, model: Path, repo_id: str = "ada/digits", *extra: str) -> dict:
    result = cli("hub", "push", model, repo_id, "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ------------------------------------------------------------------------------------------------- push


def test_push_uploads_weights_config_sample_and_card_in_one_commit(cli, fake_hub, tiny_model):
    report = push(cli, tiny_model)
    files = sorted(path.name for path in (fake_hub.remote / "ada/digits/main").iterdir())
    assert files == ["README.md", "config.json", "model.safetensors", "sample.png"]
    assert sorted(report["files"]) == files and report["revision"] == "main"
    assert fake_hub.calls == ["create_repo", "create_commit"]
    assert (fake_hub.remote / "ada/digits/main/model.safetensors").read_bytes() == \
        (tiny_model / "model.safetensors").read_bytes()
    assert report["url"].startswith("https://huggingface.co/ada/digits/commit/")


def test_the_model_card_has_hub_metadata_training_summary_and_usage(cli, fake_hub, tiny_model):
    push(cli, tiny_model)
    card = ModelCard((fake_hub.remote / "ada/digits/main/README.md").read_text())
    assert card.data.library_name == "latentctl"
    assert {"latentctl", "gan", "conditional-gan"} <= set(card.data.tags)
    assert card.data.datasets is None  # trained on random noise, not a Hub dataset
    assert "## How it was trained" in card.text and "| epochs | 1 |" in card.text
    assert "latentctl sample --model ada/digits" in card.text and "![" in card.text


def test_a_card_names_the_hub_dataset_of_real_data(tiny_model):
    from latentctl import store

    config = store.read_config(tiny_model)
    config.training["dataset"] = {"name": "mnist", "images": 60000, "synthetic": False, "sha256": "abc"}
    card = ModelCard(hub.model_card(config, "ada/digits", "sample.png"))
    assert card.data.datasets == ["ylecun/mnist"]
    assert "mnist, 60,000 images" in card.text


def test_push_to_a_branch_creates_it(cli, fake_hub, tiny_model):
    report = push(cli, tiny_model, "ada/digits", "--revision", "experiment", "--private")
    assert report["revision"] == "experiment"
    assert fake_hub.calls == ["create_repo", "create_branch", "create_commit"]
    assert (fake_hub.remote / "ada/digits/experiment/config.json").is_file()
    assert fake_hub.private["ada/digits"] is True


def test_the_token_is_never_printed_or_written(cli, fake_hub, tiny_model, isolated_home, tmp_path):
    pushed = cli("hub", "push", tiny_model, "ada/digits", "--json")
    pulled = cli("hub", "pull", "ada/digits", "--json")
    sampled = cli("--debug", "sample", "--model", "ada/digits", "--n", "2", tmp_path / "x.png")
    assert all(result.exit_code == 0 for result in (pushed, pulled, sampled))
    assert not any(TOKEN in result.output for result in (pushed, pulled, sampled))
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written and not any(TOKEN.encode() in path.read_bytes() for path in written)


def test_push_without_a_token_says_how_to_log_in(cli, fake_hub, tiny_model, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    result = cli("hub", "push", tiny_model, "ada/digits")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: pushing to ada/digits needs a Hugging Face token")
    assert "HF_TOKEN" in result.stderr and fake_hub.calls == []


def test_push_while_offline_is_refused_before_any_upload(cli, fake_hub, tiny_model, monkeypatch):
    offline(monkeypatch)
    result = cli("hub", "push", tiny_model, "ada/digits")
    assert result.exit_code == 1 and "HF_HUB_OFFLINE is set" in result.stderr and fake_hub.calls == []


@pytest.mark.parametrize("repo_id", ["digits", "a/b/c", "ada/bad name"])
def test_a_malformed_repo_id_is_a_usage_error(cli, fake_hub, tiny_model, repo_id):
    result = cli("hub", "push", tiny_model, repo_id)
    assert result.exit_code == 2 and fake_hub.calls == []


def test_a_folder_that_is_not_a_model_is_not_pushed(cli, fake_hub, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("hub", "push", tmp_path / "empty", "ada/digits")
    assert result.exit_code == 1 and "not a latentctl model folder" in result.stderr and fake_hub.calls == []


# ------------------------------------------------------------------------------------------------- pull


def test_push_then_pull_round_trips_the_model_and_sample_draws_the_same_images(cli, fake_hub, tiny_model,
                                                                                 tmp_path):
    push(cli, tiny_model)
    result = cli("hub", "pull", "ada/digits", "--json")
    assert result.exit_code == 0, result.output
    pulled = json.loads(result.stdout)
    assert pulled["name"] == "ada/digits" and pulled["kind"] == "cgan"
    assert Path(pulled["path"]).is_relative_to(fake_hub.cache)
    for model, out in ((tiny_model, "original.png"), ("ada/digits", "pulled.png")):
        assert cli("sample", "--model", model, "--n", "10", tmp_path / out).exit_code == 0
    assert (tmp_path / "original.png").read_bytes() == (tmp_path / "pulled.png").read_bytes()
    assert [(m["name"], m["source"], m["hub"]["repo_id"]) for m in
            json.loads(cli("models", "list", "--json").stdout)["models"]] == [("ada/digits", "hub", "ada/digits")]


def test_pull_downloads_only_the_weights_and_the_config(cli, fake_hub, tiny_model):
    push(cli, tiny_model)
    extra = fake_hub.remote / "ada/digits/main"
    (extra / "pytorch_model.pth").write_bytes(b"\x80\x04pickled")
    (extra / "other.safetensors").write_bytes(b"not read")
    (extra / "tokenizer.json").write_text("{}")
    result = cli("hub", "pull", "ada/digits")
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in Path(result.stdout.strip()).iterdir()) == ["config.json", "model.safetensors"]


def test_a_model_option_pulls_a_hub_model_on_first_use(cli, fake_hub, tiny_model, tmp_path):
    push(cli, tiny_model)
    result = cli("sample", "--model", "ada/digits", "--n", "4", tmp_path / "x.png")
    assert result.exit_code == 0, result.output
    assert "pulling it from the Hugging Face Hub" in result.stderr
    assert registry.find("ada/digits").source == "hub"


def test_a_pulled_model_works_offline_without_asking_the_hub(cli, fake_hub, tiny_model, monkeypatch, tmp_path):
    push(cli, tiny_model)
    assert cli("hub", "pull", "ada/digits").exit_code == 0
    offline(monkeypatch)
    monkeypatch.setattr(hub, "_api", lambda: Unreachable())
    result = cli("sample", "--model", "ada/digits", "--n", "4", tmp_path / "x.png")
    assert result.exit_code == 0, result.output


def test_pull_again_while_offline_uses_the_cache(cli, fake_hub, tiny_model, monkeypatch):
    push(cli, tiny_model)
    online = cli("hub", "pull", "ada/digits").stdout
    offline(monkeypatch)
    again = cli("hub", "pull", "ada/digits")
    assert again.exit_code == 0 and again.stdout == online


def test_offline_with_nothing_cached_is_a_one_line_error(cli, fake_hub, monkeypatch, tmp_path):
    offline(monkeypatch)
    for args in (["hub", "pull", "ada/digits"], ["sample", "--model", "ada/digits", tmp_path / "x.png"]):
        result = cli(*args)
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert lines[-2].startswith("error: ") and lines[-2].endswith(
            "ada/digits is not in the Hub cache, and HF_HUB_OFFLINE is set")
        assert lines[-1] == "hint: unset HF_HUB_OFFLINE and pull it once while online: latentctl hub pull ada/digits"
        assert "Traceback" not in result.output


def test_offline_with_the_real_client_is_a_one_line_error(cli, monkeypatch, tmp_path):
    offline(monkeypatch)  # huggingface_hub itself, no stand-in: it must fail before any network access
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    result = cli("hub", "pull", "ada/digits")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ada/digits is not in the Hub cache, and HF_HUB_OFFLINE is set")


def test_an_unknown_repo_is_a_one_line_error(cli, fake_hub):
    result = cli("hub", "pull", "ada/nothing")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ada/nothing does not exist on the Hub, or it is private")
    assert "a token that can read it" in result.stderr  # a pull needs read access, not write


def test_an_unknown_revision_is_a_one_line_error(cli, fake_hub, tiny_model):
    push(cli, tiny_model)
    result = cli("hub", "pull", "ada/digits@v9")
    assert result.exit_code == 1 and "ada/digits has no revision v9" in result.stderr


def test_a_revision_is_pulled_and_registered_with_it(cli, fake_hub, tiny_model):
    push(cli, tiny_model, "ada/digits", "--revision", "v2")
    result = cli("hub", "pull", "ada/digits@v2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "ada/digits@v2"
    assert registry.find("ada/digits@v2").hub["revision"] == "v2"


def test_a_repo_that_is_not_a_latentctl_model_is_refused(cli, fake_hub):
    folder = fake_hub.remote / "ada/bert/main"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "model.safetensors").write_bytes(b"\x00")
    result = cli("hub", "pull", "ada/bert")
    assert result.exit_code == 1
    assert "error: ada/bert is not a latentctl model: its config.json does not say" in result.stderr
    assert registry.find("ada/bert") is None


def test_a_repo_without_weights_is_refused(cli, fake_hub):
    folder = fake_hub.remote / "ada/empty/main"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("hello")
    result = cli("hub", "pull", "ada/empty")
    assert result.exit_code == 1
    assert "ada/empty is not a latentctl model: it has no model.safetensors and no config.json" in result.stderr


def test_a_pulled_model_can_be_pulled_under_another_name_and_forgotten(cli, fake_hub, tiny_model):
    push(cli, tiny_model)
    assert cli("hub", "pull", "ada/digits", "--name", "digits").exit_code == 0
    assert cli("models", "show", "digits").exit_code == 0
    result = cli("models", "rm", "digits")
    assert result.exit_code == 0 and "its files stay in the Hub cache" in result.stderr
    assert registry.find("digits") is None


def test_a_hub_model_whose_cached_files_were_deleted_is_pulled_again(cli, fake_hub, tiny_model, tmp_path):
    push(cli, tiny_model)
    assert cli("hub", "pull", "ada/digits", "--name", "digits").exit_code == 0
    shutil.rmtree(fake_hub.cache)
    result = cli("sample", "--model", "digits", "--n", "2", tmp_path / "x.png")
    assert result.exit_code == 0, result.output
    assert "no longer in the Hub cache: pulling ada/digits again" in result.stderr


def test_a_classifier_is_pushed_without_a_sample_and_its_card_says_how_to_classify(cli, fake_hub, tmp_path):
    from latentctl import store
    from latentctl.data.celeba import CELEBA_ATTRIBUTES
    from latentctl.models.classifier import AttributeClassifier, ClassifierConfig

    config = ClassifierConfig(image_size=32, width=4)
    model = store.ModelConfig(kind="classifier", network=config, labels=list(CELEBA_ATTRIBUTES))
    store.save_model(tmp_path / "classifier", model, AttributeClassifier(config))
    report = push(cli, tmp_path / "classifier", "ada/attributes")
    assert sorted(report["files"]) == ["README.md", "config.json", "model.safetensors"]
    card = ModelCard((fake_hub.remote / "ada/attributes/main/README.md").read_text())
    assert card.data.pipeline_tag == "image-classification"
    assert "latentctl classify --classifier ada/attributes face.jpg" in card.text
