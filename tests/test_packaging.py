"""Packaging: one version, the license, the classifiers, the bundled spec, --version."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import amqpcodec
import amqpcodec.compiler
from amqpcodec.__main__ import main
from amqpcodec.compiler import bundled_spec, load_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
PROJECT: dict[str, Any] = PYPROJECT["project"]


def test_the_version_is_written_once() -> None:
    assert "version" not in PROJECT and PROJECT["dynamic"] == ["version"]
    source = PYPROJECT["tool"]["hatch"]["version"]["path"]
    assert source == "amqpcodec/__init__.py"
    text = (ROOT / source).read_text("utf-8")
    assert re.findall(r'^__version__ = "([^"]+)"$', text, flags=re.M) == [amqpcodec.__version__]
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", amqpcodec.__version__)


def test_installed_metadata_agrees_with_the_package() -> None:
    assert importlib.metadata.version("amqpcodec") == amqpcodec.__version__


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"amqpcodec {amqpcodec.__version__}\n"


def test_decode_starts_without_the_proxy_or_asyncio() -> None:
    """The command line registers the proxy's and fuzz's options only when they are the
    command: decode runs without importing them (or asyncio, which the proxy needs)."""
    code = (
        "import sys; from amqpcodec.__main__ import main; "
        "status = main(['decode', '--summary', sys.argv[1]]); "
        "print(status, [m for m in ('asyncio', 'amqpcodec.proxy', 'amqpcodec._fuzz_cli')"
        " if m in sys.modules])"
    )
    capture = ROOT / "tests" / "data" / "captures" / "midstream.pcap"
    done = subprocess.run(
        [sys.executable, "-c", code, str(capture)], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "0 []"


@pytest.mark.parametrize(
    "argv, options",
    [
        (["proxy", "--help"], ["--listen", "--check", "--quiet", "--direction"]),
        (["fuzz", "--help"], ["--replay", "--serve"]),
        (["decode", "--help"], ["--summary", "--json"]),
        (["--help"], ["decode", "serve", "proxy", "fuzz", "report"]),
    ],
)
def test_each_command_help_lists_its_options(
    argv: list[str], options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert [option for option in options if option not in out] == []


def test_license_file_and_metadata_agree() -> None:
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert text.startswith("MIT License\n")
    assert PROJECT["license"] == "MIT"
    assert "License :: OSI Approved :: MIT License" in PROJECT["classifiers"]


def test_classifiers_name_every_supported_python() -> None:
    classifiers = PROJECT["classifiers"]
    assert PROJECT["requires-python"] == ">=3.10"
    versions = sorted(c.rsplit(" ", 1)[1] for c in classifiers if re.fullmatch(r".*:: 3\.\d+", c))
    assert versions == ["3.10", "3.11", "3.12", "3.13"]
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert (ROOT / "amqpcodec" / "py.typed").is_file()


def test_changelog_has_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text("utf-8")
    assert "## Unreleased" in text or f"## {amqpcodec.__version__} " in text
    assert re.search(rf"^## {re.escape(amqpcodec.__version__)} — \d{{4}}-\d\d-\d\d$", text, re.M)


# The tests also run against an installed wheel (CI, on every supported Python).
PACKAGE = Path(amqpcodec.__file__).resolve().parent
INSTALLED = PACKAGE.parent != ROOT


def test_the_wheel_carries_the_spec_where_bundled_spec_looks() -> None:
    force = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force == {"spec/amqp0-9-1.xml": "amqpcodec/compiler/amqp0-9-1.xml"}
    shipped = PACKAGE / "compiler" / "amqp0-9-1.xml"
    assert Path("amqpcodec") / shipped.relative_to(PACKAGE) == Path(force["spec/amqp0-9-1.xml"])
    sdist = PYPROJECT["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    assert {"spec", "amqpcodec", "tests", ".ci", "LICENSE", "CHANGELOG.md"} <= set(sdist)
    # Everything the tests read from the repository travels in the sdist.
    assert {"docs", "examples", "fuzz", "README.md", "pyproject.toml"} <= set(sdist)
    excluded = PYPROJECT["tool"]["hatch"]["build"]["targets"]["sdist"]["exclude"]
    assert {"docs/api", "docs/protocol", "tests/interop/clients/node_modules"} <= set(excluded)


def test_bundled_spec_is_the_source_or_a_copy_of_it() -> None:
    source = ROOT / "spec" / "amqp0-9-1.xml"
    if INSTALLED:
        assert bundled_spec() == PACKAGE / "compiler" / "amqp0-9-1.xml"
        assert bundled_spec().read_bytes() == source.read_bytes()
    else:
        assert bundled_spec() == source


def test_bundled_spec_in_an_installed_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Laid out as in site-packages (no pyproject.toml, no spec/ beside the package): the
    copy inside the package is the one compiled, and it gives the committed spec module."""
    package = tmp_path / "site-packages" / "amqpcodec" / "compiler"
    package.mkdir(parents=True)
    shutil.copy(ROOT / "spec" / "amqp0-9-1.xml", package / "amqp0-9-1.xml")
    monkeypatch.setattr(amqpcodec.compiler, "_PACKAGE", package)
    assert bundled_spec() == package / "amqp0-9-1.xml"
    module = load_spec(bundled_spec())
    assert module.METHODS[(60, 40)].NAME == "basic.publish"
    assert sorted(module.METHODS) == sorted(amqpcodec.spec.METHODS)


def test_compiler_check_passes_against_the_bundled_spec() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "amqpcodec.compiler", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
