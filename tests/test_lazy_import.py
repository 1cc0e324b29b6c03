"""``import cobre_mpi_io`` and the command line's parser load only what is used (issue 16 item 7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cobre_mpi_io

HEAVY = ("pyarrow", "numpy", "mpi4py", "matplotlib", "duckdb", "flatbuffers")


def _loaded(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    loaded: list[str] = json.loads(out.splitlines()[-1])
    return loaded


def test_importing_the_package_loads_no_heavy_dependency() -> None:
    assert _loaded("import cobre_mpi_io; cobre_mpi_io.__version__; cobre_mpi_io.OutputError") == []


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in cobre_mpi_io.__all__:
        value = getattr(cobre_mpi_io, name)
        assert value is not None, name
        assert name in dir(cobre_mpi_io)
    assert cobre_mpi_io.RunConfig.__module__ == "cobre_mpi_io.config"


def test_the_policy_and_training_packages_resolve_every_public_name() -> None:
    from cobre_mpi_io import policy, training

    for pkg in (policy, training):
        for name in pkg.__all__:
            assert getattr(pkg, name) is not None, (pkg.__name__, name)
            assert name in dir(pkg)
    assert policy.PolicyMetadata.__module__ == "cobre_mpi_io.policy.metadata"
    assert training.TrainingParquetWriter.__module__ == "cobre_mpi_io.training.writer"
    with pytest.raises(AttributeError, match="no_such_name"):
        policy.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        cobre_mpi_io.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("no AttributeError")


def test_the_validate_parser_loads_neither_mpi4py_nor_the_report_libraries() -> None:
    loaded = _loaded("from cobre_mpi_io.cli.main import build_parser\n"
                     "build_parser('validate').parse_args(['validate', 'out'])")
    assert not {"mpi4py", "matplotlib", "duckdb"} & set(loaded), loaded


def test_help_builds_no_subcommand_options() -> None:
    assert _loaded("from cobre_mpi_io.cli.main import _command_of, build_parser\n"
                   "assert _command_of(['--help']) == ''\n"
                   "build_parser('')") == []


def test_validate_loads_neither_pyarrow_nor_numpy_until_a_file_is_parsed(tmp_path: Path) -> None:
    """What ``cobre-mpi-io validate`` imports before any footer is parsed (issue 16: validate <= 3x the floor).

    The modules planning reads (schemas, layout, manifests, the journal, claims, policy and training
    metadata, format code meanings) are plain data; pyarrow and NumPy come with the first footer parsed.
    """
    loaded = _loaded("import cobre_mpi_io.cli.main, cobre_mpi_io.cli.validate\n"
                     "from cobre_mpi_io.cli.main import build_parser\n"
                     "build_parser('validate').parse_args(['validate', 'out'])\n"
                     "from cobre_mpi_io.validate import validate_output\n"
                     "from cobre_mpi_io.schemas import TABLES, table\n"
                     "assert table('hydros').names and TABLES['costs'].directory == 'costs'\n"
                     f"report = validate_output({str(tmp_path)!r})\n"  # planned: not an output directory
                     "assert not report.valid and 'not an output directory' in report.problems[0].problem")
    assert loaded == [], loaded


def test_a_demo_rank_never_imports_pandas_yet_pandas_still_works_after(tmp_path: Path) -> None:
    """pyarrow imports pandas on a process's first pyarrow.array() (0.6 s of CPU and 31 MB of a demo rank's
    2.1 s and 144 MB): the demo latches pyarrow's "no pandas" answer first; asking for pandas still works."""
    code = (
        "import sys\n"
        "from cobre_mpi_io.cli.main import main\n"
        f"rc = main(['demo', '--output', {str(tmp_path / 'out')!r}, '--scale', 'small', '--scenarios', '2', "
        "'--iterations', '2', '--quiet'])\n"
        "assert rc == 0, rc\n"
        "print('pandas' in sys.modules)\n"
        "import pyarrow as pa\n"
        "print(type(pa.table({'a': [1, 2]}).to_pandas()).__name__, 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert out[-3:] == ["False", "DataFrame", "True"], out
    assert (tmp_path / "out" / "simulation" / "_SUCCESS").exists()
