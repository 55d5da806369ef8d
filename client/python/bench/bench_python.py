#!/usr/bin/env python3
"""Side-by-side benchmark: atr's Python client against a node vs the ancestor in-process.

    python3 bench_python.py atr --api URL --data-dir DIR [--n 10000]   # this package, a node
    ANCESTOR_VENV/bin/python bench_python.py ancestor [--n 10000]         # agentmesh-tool-registry

Both build the same N tools (distinct names, 5 tags sampled from 50, 3 typed parameters, a
docstring) and time get_tool, list_tools(tag), search_tools, and the export of all specs to
OpenAI dicts; ``atr`` also times execute_tool with DockerExecutor against ``docker run`` of the
same hardened image. Prints one JSON object of medians (milliseconds unless named _us)."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time

TAGS = [f"tag{j:02d}" for j in range(50)]


def tool_tags(i: int) -> list[str]:
    return random.Random(i).sample(TAGS, 5)


def make_fn(i: int):  # type: ignore[no-untyped-def]
    def fn(a: int, b: float, c: str) -> float:
        """Benchmark tool.

        Args:
            a: First.
            b: Second.
            c: Third.
        """
        return a + b

    fn.__name__ = f"tool_{i}"
    return fn


def per_call(f, reps: int) -> float:  # type: ignore[no-untyped-def]
    """Median of 3 runs of the mean time of ``reps`` calls, seconds."""
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            f()
        runs.append((time.perf_counter() - t) / reps)
    return statistics.median(runs)


def ancestor(n: int) -> dict[str, float]:
    import atr  # the ancestor, in its own venv

    t = time.perf_counter()
    for i in range(n):
        atr.register(name=f"tool_{i}", tags=tool_tags(i))(make_fn(i))
    out = {"register_total_ms": (time.perf_counter() - t) * 1e3}
    names = [f"tool_{i}" for i in random.Random(1).sample(range(n), 200)]
    it = iter(names * 100)
    out["get_tool_us"] = per_call(lambda: atr.get_tool(next(it)), 200) * 1e6
    out["list_tools_tag_ms"] = per_call(lambda: atr.list_tools(tag="tag07"), 10) * 1e3
    out["list_tools_tag_count"] = len(atr.list_tools(tag="tag07"))
    out["search_tools_ms"] = per_call(lambda: atr.search_tools("tag07"), 10) * 1e3
    out["search_tools_count"] = len(atr.search_tools("tag07"))
    specs = atr.list_tools()
    out["export_all_openai_ms"] = per_call(lambda: [s.to_openai_function_schema() for s in specs], 1) * 1e3
    out["export_count"] = len(specs)
    try:
        from atr import DockerExecutor

        DockerExecutor()
        out["docker_executor"] = "constructed"
    except Exception as e:  # no docker SDK, or no registry to pull from
        out["docker_executor_error"] = f"{type(e).__name__}: {str(e)[:200]}"
    return out


def ours(n: int, api: str, data_dir: str, docker_api: str | None, docker_dir: str | None) -> dict[str, object]:
    import atr

    client = atr.Client(api=api, data_dir=data_dir)
    have = {v["spec"]["name"] for v in client.find(tag="bench", limit=1)}
    t = time.perf_counter()
    if not have:
        reg = atr.Registry(client)
        for i in range(n):
            fn = make_fn(i)
            reg.register(fn, name=f"tool_{i}", tags=tool_tags(i) + ["bench"] if i == 0 else tool_tags(i))
            s = reg.get_tool(f"tool_{i}")
            client.publish({"name": s.name, "version": s.version, "description": s.description, "tags": list(s.tags), "input_schema": s.input_schema, "output_schema": s.output_schema, "runtime": {"image": "bench:1", "digest": "sha256:" + "ab" * 32, "command": ["/bin/x"]}})
    out: dict[str, object] = {"publish_total_ms": (time.perf_counter() - t) * 1e3}
    reg = atr.Registry(client)  # nothing local: every lookup goes to the node
    names = [f"tool_{i}" for i in random.Random(1).sample(range(n), 200)]
    it = iter(names * 100)
    out["get_tool_by_name_first_us"] = per_call(lambda: reg.get_tool(next(it), refresh=True), 200) * 1e6
    out["get_tool_by_name_us"] = per_call(lambda: reg.get_tool(next(it)), 200) * 1e6
    ids = [reg.get_tool(nm).id for nm in names]
    it2 = iter(ids * 100)
    out["get_tool_by_id_cached_us"] = per_call(lambda: reg.get_tool(next(it2)), 200) * 1e6
    out["list_tools_tag_ms"] = per_call(lambda: reg.list_tools(tag="tag07", limit=1000), 10) * 1e3
    out["list_tools_tag_count"] = len(reg.list_tools(tag="tag07", limit=1000))
    out["search_tools_ms"] = per_call(lambda: reg.search_tools("tag07", limit=200), 10) * 1e3
    out["search_tools_count"] = len(reg.search_tools("tag07", limit=200))
    for tg in TAGS:
        reg.list_tools(tag=tg, limit=1000)
    specs = list(reg._by_id.values())
    out["export_all_openai_ms"] = per_call(lambda: [s.to_openai_function_schema() for s in specs], 1) * 1e3
    out["export_count"] = len(specs)
    if docker_api:
        dc = atr.Client(api=docker_api, data_dir=docker_dir)
        dreg = atr.Registry(dc)

        from calc_tool import add

        dreg.register(add, name="calculator", tags=["math"])
        ex = atr.DockerExecutor(registry=dreg)
        spec = ex.publish(dreg.get_tool("calculator"))
        ex.execute(spec, {"a": 5, "b": 3})
        samples = []
        for _ in range(10):
            t = time.perf_counter()
            assert ex.execute(spec, {"a": 5, "b": 3}) == 8
            samples.append(time.perf_counter() - t)
        out["execute_tool_docker_ms"] = statistics.median(samples) * 1e3
        cmd = ["docker", "run", "--rm", "-i", "--network", "none", "--read-only", "--user", "65534:65534", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--memory", "128m", "--memory-swap", "128m", "--pids-limit", "32", "--cpus", "0.5", "--tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=16m", "--log-driver", "none", "--entrypoint", "/usr/bin/python3", spec.image or "", "-I", "-S", "-B", "/app/_runner.py"]
        samples = []
        for _ in range(10):
            t = time.perf_counter()
            r = subprocess.run(cmd, input=b'{"a": 5, "b": 3}', capture_output=True, timeout=60)
            samples.append(time.perf_counter() - t)
            assert r.stdout.strip() == b"8", r
        out["docker_run_same_image_ms"] = statistics.median(samples) * 1e3
        out["docker_run_cmd"] = " ".join(cmd)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["atr", "ancestor"])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--api")
    ap.add_argument("--data-dir")
    ap.add_argument("--docker-api")
    ap.add_argument("--docker-data-dir")
    a = ap.parse_args()
    res = ancestor(a.n) if a.mode == "ancestor" else ours(a.n, a.api, a.data_dir, a.docker_api, a.docker_data_dir)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
