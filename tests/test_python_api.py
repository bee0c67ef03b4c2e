"""docs/python-api.md runs as it stands, and the public names it promises exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import latentctl
from test_hub import fake_hub  # noqa: F401 (a fixture: the Hub stand-in)

PAGE = Path(__file__).parent.parent / "docs" / "python-api.md"


def blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_the_block_finder_finds_python_blocks_only():
    text = "intro\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x\n```\n"
    assert blocks(text) == ["x = 1\n", "y = x\n"]


@pytest.mark.slow
def test_the_python_api_page_runs(fake_hub, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    page = blocks(PAGE.read_text())
    assert len(page) >= 8
    for number, block in enumerate(page, 1):
        exec(compile(block, f"{PAGE.name}, block {number}", "exec"), namespace)
    for written in ("digits.png", "morph.gif", "smile.png", "directions.png", "walk.png", "faces/0000-seed0.png",
                    "runs/digits/config.json", "runs/faces/config.json", "runs/attributes/config.json",
                    "latents.safetensors", "0000-seed0-reconstruction.png", "edit.png",
                    "runs/faces-encoder/config.json"):
        assert (tmp_path / written).is_file(), written
    assert namespace["run"].epoch == 3 and namespace["run"].complete  # trained, then resumed for one more epoch
    assert namespace["report"].images.shape == (4, 6, 3, 32, 32)
    assert len(namespace["found"].components()) == 6 and namespace["walk"].images.shape == (2, 5, 3, 32, 32)
    assert namespace["edited"].images.shape == (1, 5, 3, 32, 32)
    assert namespace["guessed"].encoder_dir == Path("runs/faces-encoder")
    assert namespace["pulled"].repo_id == "your-name/mnist-cgan"
    assert namespace["grid"].images.shape == (16, 1, 28, 28)  # drawn by the pulled model


def test_every_public_name_resolves():
    assert latentctl.__all__[0] == "__version__"
    for name in latentctl.__all__:
        assert getattr(latentctl, name) is not None, name
    assert set(dir(latentctl)) == set(latentctl.__all__)
    with pytest.raises(AttributeError):
        latentctl.no_such_name  # noqa: B018
