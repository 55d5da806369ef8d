"""The ancestor's side of `cargo bench -p atrd --bench answers`.

Registers N tools in agentmesh-tool-registry (the Python package atr succeeds), each a
3-parameter function with a docstring and 5 tags out of 50 words (the same tags the Rust side
gives its specs), then times `list_tools(tag=...)` in-process and reads the RSS the tools
took. Prints one JSON line. Run with the interpreter of a throw-away venv:

    python3 -m venv /tmp/atr-ancestor && /tmp/atr-ancestor/bin/pip install agentmesh-tool-registry==3.7.0
"""

import json
import statistics
import sys
import time


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    n = int(sys.argv[1])
    tags_of = json.loads(sys.stdin.read())  # one list of tags per tool, from the Rust side
    queries = int(sys.argv[2])
    import atr  # noqa: E402 (timed apart from the registry)

    base = rss_kib()
    reg = atr.get_registry()
    for i in range(n):
        def tool(query: str, limit: int, verbose: bool) -> str:
            """Look something up.

            query: what to look up
            limit: at most this many results
            verbose: explain each result
            """
            return query

        tool.__name__ = f"tool{i}"
        atr.register(
            name=f"tool{i}",
            description=f"Tool tool{i}: looks things up.",
            tags=tags_of[i],
            registry=reg,
        )(tool)
    per_tool_kib = (rss_kib() - base) / n
    words = sorted({t for ts in tags_of for t in ts})
    times = []
    counts = []
    for q in range(queries):
        tag = words[q % len(words)]
        t0 = time.perf_counter()
        found = reg.list_tools(tag=tag)
        times.append((time.perf_counter() - t0) * 1000.0)
        counts.append(len(found))
    times.sort()
    print(json.dumps({
        "list_tools_p50_ms": statistics.median(times),
        "list_tools_p95_ms": times[int(0.95 * (len(times) - 1))],
        "mean_results": sum(counts) / len(counts),
        "rss_per_tool_kib": per_tool_kib,
    }))


main()
