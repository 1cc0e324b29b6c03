"""Convert tests/data/4ree (Cobre 0.5.1 input format) to tests/data/4ree-v018 (Cobre 0.18).

Run from the repository root: ``python tests/data/make_4ree_v018.py``. The conversion follows
Cobre 0.18's JSON Schemas (``cobre.schema.export``) and is checked with ``cobre.io.validate``
(``tests/test_case_formats.py``):

- hydros: ``bus_id`` and ``generation.productivity_mw_per_m3s`` move out; each hydro gets one unit
  group (id 0, on its old bus, with the plant's generation and turbined bounds) and
  ``operational_start_date``; its productivity goes to ``system/hydro_production_models.json``
  (one ``stage_ranges`` entry, constant productivity, every stage);
- buses, thermals, lines: ``operational_start_date`` = the first stage's start date;
- config: ``training.forward_passes`` -> ``training.selection {sampled, forward_passes}``,
  ``training.scenario_source.seed`` -> ``training.tree_seed``,
  ``simulation.num_scenarios`` -> ``simulation.selection {sampled, num_scenarios}``;
- stages: ``num_scenarios`` -> ``num_openings``; penalties: ``fpha_turbined_cost`` -> ``turbined_cost``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

SRC = Path(__file__).parent / "4ree"
DST = Path(__file__).parent / "4ree-v018"


def _load(rel: str) -> Any:
    return json.loads((SRC / rel).read_text())


def _save(rel: str, doc: Any) -> None:
    (DST / rel).parent.mkdir(parents=True, exist_ok=True)
    (DST / rel).write_text(json.dumps(doc, indent=2) + "\n")


def main() -> None:
    shutil.rmtree(DST, ignore_errors=True)
    DST.mkdir()
    stages = _load("stages.json")
    start = stages["stages"][0]["start_date"]
    for st in stages["stages"]:
        st["num_openings"] = st.pop("num_scenarios")
    _save("stages.json", stages)
    _save("initial_conditions.json", _load("initial_conditions.json"))
    pen = _load("penalties.json")
    pen["hydro"]["turbined_cost"] = pen["hydro"].pop("fpha_turbined_cost")
    _save("penalties.json", pen)
    for rel, key in (("system/buses.json", "buses"), ("system/thermals.json", "thermals"),
                     ("system/lines.json", "lines")):
        doc = _load(rel)
        for e in doc[key]:
            e["operational_start_date"] = start
        _save(rel, doc)
    hydros = _load("system/hydros.json")
    models = []
    for h in hydros["hydros"]:
        gen = h["generation"]
        prod = gen.pop("productivity_mw_per_m3s")
        h["operational_start_date"] = start
        h["unit_groups"] = [{"id": 0, "name": f"{h['name']}_G1", "bus_id": h.pop("bus_id"),
                             **{k: gen[k] for k in ("min_generation_mw", "max_generation_mw",
                                                    "min_turbined_m3s", "max_turbined_m3s")}}]
        models.append({"hydro_id": h["id"], "selection_mode": "stage_ranges", "stage_ranges": [
            {"start_stage_id": 0, "end_stage_id": None, "model": gen["model"], "productivity_mw_per_m3s": prod}]})
    _save("system/hydros.json", hydros)
    _save("system/hydro_production_models.json", {"production_models": models})
    cfg = _load("config.json")
    tr, sim = cfg["training"], cfg["simulation"]
    tr["selection"] = {"method": "sampled", "forward_passes": tr.pop("forward_passes")}
    tr["tree_seed"] = tr["scenario_source"].pop("seed")
    sim["selection"] = {"method": "sampled", "num_scenarios": sim.pop("num_scenarios")}
    _save("config.json", cfg)


if __name__ == "__main__":
    main()
