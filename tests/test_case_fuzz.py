"""Property-based fuzz of case loading: every mutation of the 4ree case is a System or an OutputError.

Both input formats: ``tests/data/4ree`` (Cobre 0.5.x) and ``tests/data/4ree-v018`` (Cobre 0.18), their
``config.json`` included (checked when the case loads).

Mutations (derandomized, so CI runs the same cases every time): a JSON value replaced by another of any
type (null, booleans, huge/negative/fractional integers, NaN, ±Infinity, huge floats, strings, lists,
objects), a key deleted, a list entry duplicated or dropped, a file's bytes damaged (not UTF-8, UTF-16,
truncated, random bytes spliced in, a byte-order mark, empty), one to three at once across files.  Every
outcome must be a loaded :class:`System` (then usable: hash, layouts, an empty payload that validates and
builds) or an :class:`OutputError` with a message, never another exception and never a NumPy warning.

``CASES`` counts the outcomes; ``pytest -s tests/test_case_fuzz.py`` prints them.
"""

from __future__ import annotations

import atexit
import copy
import json
import math
import shutil
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import CASE_4REE, DATA, json_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobre_mpi_io import OutputError, System, empty_scenario_result
from cobre_mpi_io.simulation.payload import validate_result
from cobre_mpi_io.simulation.tables import build_table

CASE_V018 = DATA / "4ree-v018"
FILES = ("stages.json", "system/buses.json", "system/lines.json", "system/hydros.json", "system/thermals.json",
         "initial_conditions.json", "penalties.json", "config.json")
FILES_V018 = (*FILES, "system/hydro_production_models.json")
ORIGINAL = {(CASE_4REE, rel): (CASE_4REE / rel).read_bytes() for rel in FILES} | {
    (CASE_V018, rel): (CASE_V018 / rel).read_bytes() for rel in FILES_V018}
DOCS = {key: json.loads(data) for key, data in ORIGINAL.items()}
MAX_EXAMPLES = 600
MAX_EXAMPLES_V018 = 200
CASES: Counter[str] = Counter()
RUNS: Counter[Path] = Counter()  # fuzz cases per case directory, in this process


# the thermals file has ~900 paths: sample the first entries' paths and the structure, not all 126 plants
PATHS = {key: [p for p in json_paths(doc) if not (len(p) > 1 and isinstance(p[1], int) and p[1] > 6)]
         for key, doc in DOCS.items()}
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-3, max_value=20), st.sampled_from([-1, 2**31, 2**63, 10**30, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 5e-324, 0.5, 1e9]),
    st.text(max_size=8), st.sampled_from(["", "1", "nan", "import", "\u00e9\u00e8"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=6)


@st.composite
def mutation(draw: st.DrawFn, case: Path = CASE_4REE) -> tuple[str, str, Any]:
    rel = draw(st.sampled_from(FILES_V018 if case == CASE_V018 else FILES))
    kind = draw(st.sampled_from(["value", "value", "value", "delete", "duplicate", "drop", "bytes"]))
    if kind == "bytes":
        return rel, kind, draw(st.sampled_from(["latin1", "utf16", "truncate", "splice", "bom", "empty"])), \
            draw(st.integers(0, 10**6)), draw(st.binary(min_size=1, max_size=4))  # type: ignore[return-value]
    path = draw(st.sampled_from(PATHS[case, rel]))
    return rel, kind, (path, draw(VALUES))


def _apply(docs: dict[str, Any], raw: dict[str, bytes], m: tuple[Any, ...]) -> None:
    rel, kind = m[0], m[1]
    if kind == "bytes":
        how, pos, junk = m[2], m[3], m[4]
        data = raw.get(rel) or json.dumps(docs[rel]).encode()
        pos %= max(len(data), 1)
        raw[rel] = {"latin1": data[:pos] + "é".encode("latin-1") + data[pos:],
                    "utf16": data.decode("utf-8", "replace").encode("utf-16"),
                    "truncate": data[:pos], "splice": data[:pos] + junk + data[pos:],
                    "bom": b"\xef\xbb\xbf" + data, "empty": b""}[how]
        return
    path, value = m[2]
    parent: Any = docs[rel]
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if kind == "value":
        parent[last] = value
    elif kind == "delete":
        del parent[last]
    elif kind == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))
    elif kind == "drop" and isinstance(parent, list):
        parent.pop(last)
    else:
        parent[last] = value
    raw.pop(rel, None)  # the file is rewritten from the edited document


_CASE_DIR: dict[Path, Path] = {}


def _case_dir(source: Path) -> Path:
    if source not in _CASE_DIR:
        d = Path(tempfile.mkdtemp(prefix="cobre-case-fuzz-")) / "case"
        atexit.register(shutil.rmtree, d.parent, ignore_errors=True)  # one per process, removed at its exit
        shutil.copytree(source, d)
        _CASE_DIR[source] = d
    return _CASE_DIR[source]


def _use(system: System) -> None:
    """What a loaded system must support without error: hash, lookups, an empty payload through validation and
    the table builder (a derived value that overflows is a SchemaError, also acceptable)."""
    assert system.system_hash.startswith("sha256:")
    for table in system.simulation_tables:
        system.canonical_layout(table)
        if table != "costs":
            system.operative_states(table)
    p = empty_scenario_result(system, 0, fill=1.0)
    v = validate_result(p, system)
    if "hydros" in v.tables:  # generation_mwh = generation_mw × block hours: what huge hours overflow
        try:
            build_table("hydros", v.tables["hydros"], system, "full", "hydros" in v.canonical, scenario_id=0)
        except OutputError:
            CASES["derived overflow"] += 1


@pytest.mark.slow(40)
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(mutation(), min_size=1, max_size=3))
def test_every_mutated_case_loads_or_is_an_output_error(mutations: list[tuple[Any, ...]]) -> None:
    _check(CASE_4REE, FILES, mutations)


@settings(max_examples=MAX_EXAMPLES_V018, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(mutation(CASE_V018), min_size=1, max_size=3))
def test_every_mutated_v018_case_loads_or_is_an_output_error(mutations: list[tuple[Any, ...]]) -> None:
    _check(CASE_V018, FILES_V018, mutations)


def _check(source: Path, files: tuple[str, ...], mutations: list[tuple[Any, ...]]) -> None:
    RUNS[source] += 1
    case = _case_dir(source)
    docs = {rel: copy.deepcopy(DOCS[source, rel]) for rel in files}
    raw: dict[str, bytes] = {}
    for m in mutations:
        try:
            _apply(docs, raw, m)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed what this one addresses
    changed = [rel for rel in files if rel in raw or docs[rel] != DOCS[source, rel]]
    try:
        for rel in changed:
            (case / rel).write_bytes(raw[rel] if rel in raw else json.dumps(docs[rel]).encode())
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                system = System.from_case(case)
            except OutputError as exc:
                assert str(exc) and "schema error in " in str(exc)
                CASES["refused"] += 1
                return
            _use(system)
            CASES["loaded"] += 1
    finally:
        for rel in changed:
            (case / rel).write_bytes(ORIGINAL[source, rel])


def test_fuzz_exercised_both_outcomes() -> None:
    """Runs after the fuzz campaigns this process ran (under xdist each may run on another worker, or
    after this test): each ran, both outcomes happened, and the counts are printed."""
    total = CASES["refused"] + CASES["loaded"]
    print(f"\ncase fuzz: {total} cases: {CASES['loaded']} loaded, {CASES['refused']} refused with an OutputError, "
          f"{CASES['derived overflow']} loaded systems whose derived values overflow (SchemaError)")
    for source, runs in RUNS.items():  # hypothesis may stop early on an exhausted search space, never here
        assert runs >= {CASE_4REE: MAX_EXAMPLES, CASE_V018: MAX_EXAMPLES_V018}[source] // 2, (source, runs)
    if total:
        assert CASES["loaded"] > 0 and CASES["refused"] > 0
    for d in _CASE_DIR.values():
        shutil.rmtree(d.parent, ignore_errors=True)
    assert not math.isnan(float(total))
