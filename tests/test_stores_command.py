"""`vex stores` and `vex --help` through the CLI: generated from each connector's capabilities, client library
and options model, so what they say is what a run accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from connectors import registry
from connectors.base import Capabilities, Connector, StoreInfo, StoreOptions
from connectors.registry import BUILTIN, get_connector
from engine.commandline import main
from tests.conftest import run_vex


def _blocking(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment in which importing `modules` fails, as on a machine without the extra."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{module!r}] = None\n" for module in modules)
    )
    return {"PYTHONPATH": str(tmp_path)}


def test_stores_lists_every_store_with_what_its_capabilities_say() -> None:
    result = run_vex("stores", "--json")
    assert result.returncode == 0, result.stderr
    entries = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert list(entries)[: len(BUILTIN)] == list(BUILTIN)
    for name, entry in entries.items():
        caps = get_connector(name).capabilities
        assert entry["installed"] is True, name
        assert entry["install"] is None, name
        assert entry["embedded"] == caps.embedded
        assert entry["max_dims"] == caps.max_dims
        assert entry["sparse_vectors"] == caps.sparse_vectors
        assert tuple(entry["metrics"]) == caps.metrics
        assert entry["can_export"] and entry["can_import"], name
    assert entries["pgvector"]["max_dims_indexed"] == 2000
    assert entries["pgvector"]["embedded"] is False and entries["vektor"]["embedded"] is True


def test_the_table_shows_each_store_on_one_line() -> None:
    result = run_vex("stores")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line.split()}
    assert lines["pgvector"][:5] == ["pgvector", "yes", "yes", "yes", "no"]
    assert "16,000" in " ".join(lines["pgvector"])
    assert lines["qdrant"][1] == "yes"
    assert lines["qdrant"][6] == "carried" and lines["jsonl"][6] == "yes"  # every store keeps sparse vectors
    assert "vex stores NAME" in result.stdout


def test_a_store_s_options_are_its_options_model() -> None:
    for name in BUILTIN:
        result = run_vex("stores", name, "--json")
        assert result.returncode == 0, result.stderr
        entry = json.loads(result.stdout)
        model = get_connector(name).Options.model_fields
        assert [option["flag"] for option in entry["options"]] == ["--" + f.replace("_", "-") for f in model]
        for option in entry["options"]:
            info = model[option["flag"][2:].replace("-", "_")]
            assert option["required"] == info.is_required(), (name, option)
            assert option["description"], f"{name} {option['flag']} has no description"
    qdrant = json.loads(run_vex("stores", "qdrant", "--json").stdout)
    api_key = next(option for option in qdrant["options"] if option["flag"] == "--api-key")
    assert api_key["secret"] is True and api_key["value"] == "SECRET"
    metric = next(option for option in qdrant["options"] if option["flag"] == "--metric")
    assert metric["value"] == "cosine|dot|euclid|manhattan"


def test_one_store_on_the_terminal() -> None:
    result = run_vex("stores", "pgvector")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pgvector: PostgreSQL with pgvector")
    assert "max dims  : 16,000 (indexed up to 2,000)" in result.stdout
    assert "  --url TEXT  (required)" in result.stdout
    assert "  --layout native|langchain|langchain-v2|llamaindex  (default native)" in result.stdout


def test_a_missing_client_says_what_to_install_everywhere(tmp_path: Path) -> None:
    env = _blocking(tmp_path, "qdrant_client")
    listing = run_vex("stores", env=env)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith("qdrant "))
    assert row.split()[1] == "no"
    assert "qdrant is not installed: pip install 'vex-migrate[qdrant]'" in listing.stdout
    one = json.loads(run_vex("stores", "qdrant", "--json", env=env).stdout)
    assert one["installed"] is False and one["install"] == "pip install 'vex-migrate[qdrant]'"
    assert one["options"], "the options of a store that is not installed are still shown"
    helped = run_vex("--help", env=env)
    assert "qdrant (not installed)" in helped.stdout and "chroma (not installed)" not in helped.stdout
    output = str(tmp_path / "o.vmig.jsonl")
    run = run_vex("export", "--from", "qdrant", "--path", str(tmp_path / "q"), "--output", output, env=env)
    assert run.returncode == 2, run.stderr
    assert "pip install 'vex-migrate[qdrant]'" in run.stderr and "Traceback" not in run.stderr


def test_help_names_the_stores_and_points_to_vex_stores() -> None:
    result = run_vex("--help")
    assert result.returncode == 0
    assert "stores: vektor, jsonl, qdrant, chroma, pgvector" in result.stdout
    assert "`vex stores`" in result.stdout
    assert "stores" in result.stdout.split("stores:")[0], "the stores command is listed among the commands"


def test_an_unknown_store_is_a_usage_error() -> None:
    result = run_vex("stores", "nosuch")
    assert result.returncode == 2
    assert "unknown store 'nosuch'; known stores:" in result.stderr


class _ToyOptions(StoreOptions):
    shelf: Path
    """Where the toy keeps its records."""
    colour: str = "red"
    """Colour of the shelf."""


class _ToyConnector(Connector[_ToyOptions]):
    """A store registered by a third party: it only reads."""

    name: ClassVar[str] = "toy"
    Options = _ToyOptions
    capabilities: ClassVar[Capabilities] = Capabilities(can_import=False, max_dims=8, namespaces="native")

    def describe(self) -> StoreInfo:
        return StoreInfo(exists=True)

    def extract(self, namespace, cursor):  # type: ignore[no-untyped-def]
        return iter(())


def test_a_registered_connector_is_listed_from_its_own_declarations(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(registry.BUILTIN, "toy", f"{__name__}:_ToyConnector")
    assert main(["stores", "toy", "--json"], flow_for=lambda name: None) == 0
    entry = json.loads(capsys.readouterr().out)
    assert (entry["can_export"], entry["can_import"], entry["max_dims"]) == (True, False, 8)
    assert entry["namespaces"] == "native"
    assert [(o["flag"], o["required"], o["default"]) for o in entry["options"]] == [
        ("--shelf", True, None),
        ("--colour", False, "red"),
    ]
    assert entry["options"][1]["description"] == "Colour of the shelf."


@pytest.mark.parametrize(
    ("store", "module", "options"),
    [
        ("qdrant", "qdrant_client", ["--path", "q"]),
        ("chroma", "chromadb", ["--path", "c"]),
        ("pgvector", "psycopg", ["--url", "postgresql://vex@127.0.0.1:1/vex"]),
        ("pinecone", "pinecone", ["--index", "i", "--api-key", "k"]),
        ("weaviate", "weaviate", ["--collection", "Memories"]),
    ],
)
def test_a_run_with_a_missing_client_is_one_line_naming_the_extra(
    tmp_path: Path, store: str, module: str, options: list[str]
) -> None:
    source = tmp_path / "in.vmig.jsonl"
    source.write_text("")
    for args in (
        ["export", "--from", store, *options, "--output", str(tmp_path / "o.vmig.jsonl")],
        ["import", "--from", str(source), "--to", store, *options, "--no-verify"],
    ):
        result = run_vex(*args, cwd=tmp_path, env=_blocking(tmp_path, module))
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == (
            f"vex: error: the {store} connector needs the '{get_connector(store).client_library.package}' "  # type: ignore[union-attr]
            f"package: pip install 'vex-migrate[{store}]'"
        )
