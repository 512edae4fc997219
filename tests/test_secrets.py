"""The run's secret store: references resolved once, prompts asked once, every value redacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.inventory.model import Become, Host, SecretRef
from orchestrator.secrets import MASK, SecretStore


def test_a_prompted_secret_is_asked_once_per_kind() -> None:
    asked: list[str] = []

    def prompt(label: str) -> str:
        asked.append(label)
        return f"value-for-{len(asked)}"

    store = SecretStore(prompt=prompt)
    hosts = [
        Host(name=f"h{i}", address="x", password=SecretRef(prompt=True),
             become=Become(enabled=True, password=SecretRef(prompt=True)))
        for i in range(3)
    ]  # fmt: skip
    store.preload(hosts)
    assert asked == ["password: ", "sudo password: "]
    assert store.redactor.scrub("x value-for-1 y value-for-2") == f"x {MASK} y {MASK}"


def test_without_a_terminal_a_prompt_is_an_input_error_that_says_what_to_use() -> None:
    store = SecretStore(prompt=None)
    host = Host(name="db1", address="x", password=SecretRef(prompt=True))
    with pytest.raises(InputError, match=r"no terminal.*password_env or password_file"):
        store.preload([host])


def test_missing_references_fail_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KREMOVE_TEST_NOPE", raising=False)
    store = SecretStore()
    with pytest.raises(
        InputError, match="host 'a' password: environment variable KREMOVE_TEST_NOPE"
    ):
        store.preload([Host(name="a", address="x", password=SecretRef(env="KREMOVE_TEST_NOPE"))])
    missing = tmp_path / "nope"
    with pytest.raises(InputError, match=f"host 'b' sudo password: cannot read {missing}"):
        store.preload(
            [
                Host(
                    name="b",
                    address="x",
                    become=Become(True, password=SecretRef(file=str(missing))),
                )
            ]
        )
