"""Compare duckdb, polars and pyarrow.dataset on the report's out-of-core analyses.

Usage: python scripts/bench_report_engines.py ENGINE OUT     (one engine per process, so import time counts)

The same four aggregations in each engine, over every partition of ``OUT/simulation``:

- costs (stage-level rows): per stage quantiles of total/immediate cost; per-scenario discounted total;
- buses: per (stage, bus) hours-weighted spot price, per stage deficit energy and its probability;
- hydros: per (stage, hydro) end-of-stage storage, per stage hydro generation;
- thermals: per stage thermal generation.

Each step first reduces per (scenario, stage[, entity]) and then takes p5/p25/p50/p75/p95 and the mean
over scenarios.  Prints one JSON line: engine, seconds (import included), and a checksum of the results
so the engines can be checked against each other.  Used by ``scripts/bench_report.sh engines``.
"""

from __future__ import annotations

import json
import sys
import time

T0 = time.perf_counter()
Q = (0.05, 0.25, 0.5, 0.75, 0.95)


def duckdb_run(out: str) -> dict[str, float]:
    import duckdb

    con = duckdb.connect()

    def src(t: str) -> str:
        return (f"read_parquet('{out}/simulation/{t}/*/data.parquet', hive_partitioning=true, "
                "hive_types={'scenario_id': INTEGER})")

    q = "[" + ",".join(map(str, Q)) + "]"
    res: dict[str, float] = {}
    r = con.sql(f"""with s as (select scenario_id, stage_id, total_cost t, immediate_cost i from {src('costs')}
                 where block_id is null)
                 select stage_id, avg(t), quantile_cont(t, {q}), avg(i), quantile_cont(i, {q}) from s
                 group by 1 order by 1""").fetchall()
    res["costs"] = sum(x[1] + x[2][2] for x in r)
    r = con.sql(f"""select sum(immediate_cost * discount_factor) from {src('costs')} where block_id is null
                 group by scenario_id""").fetchall()
    res["scenario_total"] = sum(x[0] for x in r) / len(r)
    r = con.sql(f"""with s as (select scenario_id, stage_id, bus_id,
                   coalesce(sum(spot_price * load_mwh / nullif(load_mw, 0)) / sum(load_mwh / nullif(load_mw, 0)),
                            avg(spot_price)) p, sum(deficit_mwh) d from {src('buses')} group by 1, 2, 3)
                 select stage_id, bus_id, avg(p), quantile_cont(p, {q}) from s group by 1, 2 order by 1, 2""").fetchall()
    res["price"] = sum(x[2] + x[3][2] for x in r)
    r = con.sql(f"""with s as (select scenario_id, stage_id, sum(deficit_mwh) d from {src('buses')} group by 1, 2)
                 select stage_id, avg(d), quantile_cont(d, {q}), avg((d > 0)::int) from s group by 1 order by 1""").fetchall()
    res["deficit"] = sum(x[1] + x[3] for x in r)
    r = con.sql(f"""with s as (select scenario_id, stage_id, hydro_id,
                   arg_max(storage_final_hm3, coalesce(block_id, 0)) v, sum(generation_mwh) g
                   from {src('hydros')} group by 1, 2, 3),
                 e as (select stage_id, hydro_id, avg(v) m, quantile_cont(v, {q}) qq from s group by 1, 2),
                 g as (select stage_id, avg(g) m, quantile_cont(g, {q}) qq from
                       (select scenario_id, stage_id, sum(g) g from s group by 1, 2) group by 1)
                 select (select sum(m + qq[3]) from e), (select sum(m + qq[3]) from g)""").fetchall()
    res["storage"], res["hydro_gen"] = r[0]
    r = con.sql(f"""with s as (select scenario_id, stage_id, sum(generation_mwh) g from {src('thermals')} group by 1, 2)
                 select stage_id, avg(g), quantile_cont(g, {q}) from s group by 1 order by 1""").fetchall()
    res["thermal_gen"] = sum(x[1] + x[2][2] for x in r)
    return res


def polars_run(out: str) -> dict[str, float]:
    import polars as pl

    def src(t: str) -> pl.LazyFrame:
        return pl.scan_parquet(f"{out}/simulation/{t}/*/data.parquet", hive_partitioning=True)

    def quant(c: str) -> list[pl.Expr]:
        return [pl.col(c).mean().alias("mean")] + [pl.col(c).quantile(x, "linear").alias(f"q{x}") for x in Q]

    def go(lf: pl.LazyFrame) -> pl.DataFrame:
        return lf.collect(engine="streaming")

    res: dict[str, float] = {}
    s = src("costs").filter(pl.col("block_id").is_null())
    d = go(s.group_by("stage_id").agg(*quant("total_cost")).sort("stage_id"))
    res["costs"] = float((d["mean"] + d["q0.5"]).sum())
    d = go(s.group_by("scenario_id").agg((pl.col("immediate_cost") * pl.col("discount_factor")).sum().alias("t")))
    res["scenario_total"] = float(d["t"].mean())  # type: ignore[arg-type]
    h = pl.col("load_mwh") / pl.when(pl.col("load_mw") != 0).then(pl.col("load_mw"))
    b = src("buses").group_by("scenario_id", "stage_id", "bus_id").agg(
        ((pl.col("spot_price") * h).sum() / h.sum()).fill_nan(None).fill_null(pl.col("spot_price").mean()).alias("p"),
        pl.col("deficit_mwh").sum().alias("d"))
    d = go(b.group_by("stage_id", "bus_id").agg(*quant("p")))
    res["price"] = float((d["mean"] + d["q0.5"]).sum())
    d = go(b.group_by("scenario_id", "stage_id").agg(pl.col("d").sum()).group_by("stage_id").agg(
        pl.col("d").mean().alias("mean"), (pl.col("d") > 0).mean().alias("prob")))
    res["deficit"] = float((d["mean"] + d["prob"]).sum())
    hy = go(src("hydros").group_by("scenario_id", "stage_id", "hydro_id").agg(
        pl.col("storage_final_hm3").sort_by(pl.col("block_id").fill_null(0)).last().alias("v"),
        pl.col("generation_mwh").sum().alias("g")))
    d = hy.group_by("stage_id", "hydro_id").agg(*quant("v"))
    res["storage"] = float((d["mean"] + d["q0.5"]).sum())
    d = hy.group_by("scenario_id", "stage_id").agg(pl.col("g").sum()).group_by("stage_id").agg(*quant("g"))
    res["hydro_gen"] = float((d["mean"] + d["q0.5"]).sum())
    d = go(src("thermals").group_by("scenario_id", "stage_id").agg(pl.col("generation_mwh").sum().alias("g"))
           .group_by("stage_id").agg(*quant("g")))
    res["thermal_gen"] = float((d["mean"] + d["q0.5"]).sum())
    return res


def pyarrow_run(out: str) -> dict[str, float]:
    """Stream record batches of only the needed columns; accumulate dense [scenario, stage, entity] arrays."""
    import numpy as np
    import pyarrow.dataset as ds

    def scan(t: str, cols: list[str]):  # type: ignore[no-untyped-def]
        d = ds.dataset(f"{out}/simulation/{t}", format="parquet", partitioning="hive")
        return d.to_batches(columns=cols, batch_size=1 << 20)

    def stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # over axis 0 (scenarios)
        return a.mean(axis=0), np.quantile(a, Q, axis=0)

    res: dict[str, float] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    for rb in scan("costs", ["scenario_id", "stage_id", "block_id", "total_cost", "immediate_cost",
                             "discount_factor"]):
        m = ~np.asarray(rb.column("block_id").is_valid())
        parts.append(tuple(np.asarray(rb.column(c))[m] for c in ("scenario_id", "stage_id", "total_cost",
                                                                 "immediate_cost", "discount_factor")))
    sid, st, tc, ic, df = (np.concatenate(x) for x in zip(*parts))
    scen, si = np.unique(sid, return_inverse=True)
    ns, nt = len(scen), int(st.max()) + 1
    tot = np.zeros((ns, nt))
    tot[si, st] = tc
    mean, qq = stats(tot)
    res["costs"] = float((mean + qq[2]).sum())
    res["scenario_total"] = float(np.bincount(si, weights=ic * df).mean())
    pos = {int(s): i for i, s in enumerate(scen)}
    lut = np.full(int(scen.max()) + 1, -1)
    lut[scen] = np.arange(ns)
    _ = pos

    nb = 0
    acc: dict[str, np.ndarray] = {}
    for rb in scan("buses", ["scenario_id", "stage_id", "bus_id", "load_mw", "load_mwh", "deficit_mwh",
                             "spot_price"]):
        s = lut[np.asarray(rb.column("scenario_id"))]
        t = np.asarray(rb.column("stage_id"))
        bus = np.asarray(rb.column("bus_id"))
        if not acc:
            nb = int(bus.max()) + 1
            acc = {k: np.zeros((ns, nt, nb)) for k in ("ph", "h", "d", "p", "n")}
        lm = np.asarray(rb.column("load_mw"))
        h = np.divide(np.asarray(rb.column("load_mwh")), lm, out=np.zeros_like(lm), where=lm != 0)
        p = np.asarray(rb.column("spot_price"))
        idx = (s, t, bus)
        np.add.at(acc["ph"], idx, p * h)
        np.add.at(acc["h"], idx, h)
        np.add.at(acc["p"], idx, p)
        np.add.at(acc["n"], idx, 1)
        np.add.at(acc["d"], idx, np.asarray(rb.column("deficit_mwh")))
    price = np.where(acc["h"] > 0, acc["ph"] / np.where(acc["h"] > 0, acc["h"], 1), acc["p"] / np.maximum(acc["n"], 1))
    mean, qq = stats(price)
    res["price"] = float((mean + qq[2]).sum())
    dd = acc["d"].sum(axis=2)
    res["deficit"] = float((dd.mean(axis=0) + (dd > 0).mean(axis=0)).sum())

    hacc: dict[str, np.ndarray] = {}
    for rb in scan("hydros", ["scenario_id", "stage_id", "block_id", "hydro_id", "storage_final_hm3",
                              "generation_mwh"]):
        s = lut[np.asarray(rb.column("scenario_id"))]
        t = np.asarray(rb.column("stage_id"))
        hy = np.asarray(rb.column("hydro_id"))
        blk = np.asarray(rb.column("block_id").fill_null(0))
        if not hacc:
            nh = int(hy.max()) + 1
            hacc = {"v": np.zeros((ns, nt, nh)), "b": np.full((ns, nt, nh), -1), "g": np.zeros((ns, nt))}
        v = np.asarray(rb.column("storage_final_hm3"))
        later = blk >= hacc["b"][s, t, hy]
        hacc["b"][s[later], t[later], hy[later]] = blk[later]
        hacc["v"][s[later], t[later], hy[later]] = v[later]
        np.add.at(hacc["g"], (s, t), np.asarray(rb.column("generation_mwh")))
    mean, qq = stats(hacc["v"])
    res["storage"] = float((mean + qq[2]).sum())
    mean, qq = stats(hacc["g"])
    res["hydro_gen"] = float((mean + qq[2]).sum())

    g = np.zeros((ns, nt))
    for rb in scan("thermals", ["scenario_id", "stage_id", "generation_mwh"]):
        np.add.at(g, (lut[np.asarray(rb.column("scenario_id"))], np.asarray(rb.column("stage_id"))),
                  np.asarray(rb.column("generation_mwh")))
    mean, qq = stats(g)
    res["thermal_gen"] = float((mean + qq[2]).sum())
    return res


if __name__ == "__main__":
    engine, out = sys.argv[1], sys.argv[2]
    r = {"duckdb": duckdb_run, "polars": polars_run, "pyarrow": pyarrow_run}[engine](out)
    print(json.dumps({"engine": engine, "seconds": round(time.perf_counter() - T0, 3),
                      "results": {k: float(f"{v:.6g}") for k, v in sorted(r.items())}}))
