"""Against real atrd processes and the real Docker Engine: a function published from Python on
node A is found and run with DockerExecutor from node B, with a receipt verified in Python; a
tampered answer is refused; exports pass the vendors' SDK checker."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import atr
from atr.receipt import verify_invocation

from conftest import REPO, Node, sandbox_containers
from test_schema import Box, Color


def summarize(numbers: list[int], label: str = "sum") -> dict:
    """Sum and count numbers.

    Args:
        numbers: The numbers.
        label: Name of the result.
    """
    return {label: total(numbers), "count": len(numbers)}


def total(xs: list[int]) -> int:
    return sum(xs)


@pytest.fixture(scope="module")
def published(node_a: Node, runtime_image: str) -> atr.ToolSpec:
    reg = atr.Registry(node_a.client())
    reg.register(summarize, name="py-summarize", tags=["python-test"], version="1.0.0")
    return atr.DockerExecutor(registry=reg).publish(reg.get_tool("py-summarize"))


def test_publish_on_a_then_find_and_execute_from_b(published: atr.ToolSpec, node_a: Node, node_b: Node) -> None:
    assert published.id and published.id.startswith("atr_")
    a_peer = node_a.client().status()["peer_id"]
    assert published.publisher == a_peer
    reg_b = atr.Registry(node_b.client())
    spec = None
    deadline = time.monotonic() + 30
    while spec is None:
        try:
            spec = reg_b.get_tool("py-summarize", network=True)
        except atr.ToolNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert spec.id == published.id and spec.function is None
    assert spec.input_schema["properties"]["numbers"] == {"type": "array", "items": {"type": "integer"}, "description": "The numbers."}
    ex = atr.DockerExecutor(registry=reg_b)
    out = ex.execute(spec, {"numbers": [1, 2, 3, 4]}, timeout=30)
    assert out == {"sum": 10, "count": 4}
    inv = ex.last
    assert inv is not None and inv.status == "ok"
    assert inv.provider == a_peer  # node B asked A, the publisher, to run it
    assert inv.receipt.value["provider"] == atr.keys.key_of_peer_id(a_peer)
    assert inv.receipt.value["tool"] == atr.signed.tool_id_bytes(published.id)
    # B's node kept the receipt it received.
    assert any(r["tool"] == published.id for r in node_b.client().receipts())
    # invalid input is refused before anything runs
    with pytest.raises(atr.ValidationError):
        ex.execute(spec, {"numbers": ["x"]})


def test_tampered_answers_are_refused(published: atr.ToolSpec, node_a: Node) -> None:
    c = node_a.client()
    req = {"id": published.id, "input": {"numbers": [5, 6]}}
    resp = c.request("POST", "/v1/invoke", body=req, auth=True, timeout=120)
    spec = c.signed_spec(published.id)
    ok = verify_invocation(req, resp, spec)
    assert ok.output == {"sum": 11, "count": 2}

    def refused(mutate, needle: str) -> None:  # type: ignore[no-untyped-def]
        r = copy.deepcopy(resp)
        q = copy.deepcopy(req)
        mutate(r, q)
        with pytest.raises(atr.BadReceipt) as e:
            verify_invocation(q, r, spec)
        assert needle in str(e.value), e.value

    refused(lambda r, q: r.update(output={"sum": 12, "count": 2}), "output hash")
    refused(lambda r, q: q.update(input={"numbers": [5, 7]}), "input hash")
    refused(lambda r, q: r.update(status="tool_error"), "receipt says ok")
    refused(lambda r, q: r["receipt"].update(exit_code=3), "not the signed receipt")
    flipped = resp["receipt_hex"][:-2] + ("00" if resp["receipt_hex"][-2:] != "00" else "01")
    refused(lambda r, q: r.update(receipt_hex=flipped), "BadSignature")
    refused(lambda r, q: r.update(provider="12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"), "not the provider")
    other = c.find(name="py-summarize")[0]["id"]
    other_spec = atr.signed.verify_envelope(atr.signed.SPEC, bytes.fromhex(c.show(other)["envelope_hex"]))
    assert other_spec.hash == spec.hash
    bad_spec = atr.signed.Verified({**spec.value, "limits": {**spec.value["limits"], "pids": 1}}, spec.body, spec.signature, spec.hash)
    with pytest.raises(atr.BadReceipt, match="limits"):
        verify_invocation(req, resp, bad_spec)
    assert resp["receipt"]["policy_hash"] and resp["receipt"]["usage"]["wall_ms"] >= 0
    other_policy = {**spec.value, "permissions": {"scratch_bytes": 2 << 20}}
    bad_policy = atr.signed.Verified(other_policy, spec.body, spec.signature, spec.hash)
    with pytest.raises(atr.BadReceipt, match="different policy"):
        verify_invocation(req, resp, bad_policy)


def test_errors_carry_api_codes(node_a: Node) -> None:
    c = node_a.client()
    with pytest.raises(atr.ApiError) as e:
        c.show("atr_" + "a" * 52)
    assert e.value.code == "not_found" and e.value.status == 404
    bad = atr.Client(api=node_a.api, token="wrong")
    with pytest.raises(atr.ApiError) as e:
        bad.status()
    assert e.value.code == "unauthorized"
    with pytest.raises(atr.ApiError) as e:
        c.invoke(id="atr_" + "a" * 52, input={})
    assert e.value.code == "not_found"
    with pytest.raises(atr.Unreachable):
        atr.Client(api="http://127.0.0.1:1", token="t").status()


def test_endpoint_found_as_the_cli_finds_it(node_a: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATR_TOKEN", raising=False)
    monkeypatch.setenv("ATR_API", node_a.api)
    monkeypatch.setenv("ATR_DATA_DIR", node_a.dir)
    c = atr.Client()
    assert c.endpoint.token == node_a.token and c.endpoint.token_source.endswith("api.token")
    assert c.status()["peer_id"].startswith("12D3KooW")
    monkeypatch.setenv("ATR_TOKEN", "from-env")
    assert atr.Client().endpoint.token == "from-env"


def test_get_callable_is_the_local_function(node_a: Node) -> None:
    reg = atr.Registry(node_a.client())
    reg.register(summarize, name="local-sum")
    assert reg.get_callable("local-sum") is summarize
    assert reg.get_callable("local-sum")(numbers=[1, 2]) == {"sum": 3, "count": 2}


def test_list_search_and_async_client(published: atr.ToolSpec, node_a: Node) -> None:
    import asyncio

    reg = atr.Registry(node_a.client())
    assert published.id in {s.id for s in reg.list_tools(tag="python-test")}
    assert published.id in {s.id for s in reg.search_tools("summarize")}

    async def main() -> list:
        async with atr.AsyncClient(api=node_a.api, data_dir=node_a.dir) as ac:
            st = await ac.status()
            assert st["peer_id"].startswith("12D3KooW")
            inv = await ac.invoke(id=published.id, input={"numbers": [2]})
            return [inv.output]

    assert asyncio.run(main()) == [{"sum": 2, "count": 1}]


def test_exports_pass_the_vendor_checker(published: atr.ToolSpec, tmp_path: Path) -> None:
    checker = REPO.parent / "shared/tools/check_exports.py"
    if not checker.is_file():
        checker = Path("/work/shared/tools/check_exports.py")
    if not checker.is_file():
        pytest.fail("../shared/tools/check_exports.py not found")
    probe = subprocess.run([sys.executable, "-c", "import openai, anthropic, mcp, google.genai"], capture_output=True)
    if probe.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the export checker's SDKs are not installed (protocol/tests/export-checker-requirements.txt)")
        pytest.skip("the export checker's SDKs are not installed")
    reg = atr.Registry()

    @reg.register(name="sample_tool", tags=["demo"], version="1.2.3", cost="low")
    def sample_tool(a: int, b: float = 1.0, tags: list[str] | None = None, mode: str = "x") -> dict:
        """Combine a and b.

        Args:
            a: The integer input.
            b: A float multiplier.
            tags: Optional list of tags.
            mode: A mode.
        """
        return {}

    @reg.register(name="boxes", side_effects=["write"])
    def boxes(items: list[Box], color: Color, pair: tuple[int, str] | None = None, extra: dict[str, int] | None = None) -> Box:
        """Nested objects, enums, tuples and maps."""
        return items[0]

    specs = [reg.get_tool("sample_tool"), reg.get_tool("boxes"), published]
    for fmt in ("openai", "openai-responses", "anthropic", "mcp", "gemini"):
        f = tmp_path / f"{fmt}.json"
        f.write_text(json.dumps([s.export(fmt) for s in specs]))
        r = subprocess.run([sys.executable, str(checker), fmt, str(f)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{fmt}: {r.stdout}\n{r.stderr}"
        assert f"{len(specs)} tools valid" in r.stdout, r.stdout
    assert sandbox_containers() == []


def test_readme_examples_run_unchanged(node_a: Node, runtime_image: str, tmp_path: Path) -> None:
    script = REPO.parent / "shared/seed-examples/readme_examples.py"
    if not script.is_file():
        script = Path("/work/shared/seed-examples/readme_examples.py")
    # A fresh node: the examples register `calculator` 1.0.0, which must be theirs.
    n = Node()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATR_")}
        env.update(ATR_API=n.api, ATR_DATA_DIR=n.dir, PYTHONPATH=str(REPO / "client/python") + os.pathsep + env.get("PYTHONPATH", ""))
        r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "calculator -> 8 (local and sandboxed), processor -> 10" in r.stdout
        names = {v["spec"]["name"] for v in n.client().find()}
        assert {"calculator", "processor"} <= names
    finally:
        n.stop()


def test_a_resolved_name_stays_pinned_until_refresh(node_a: Node, runtime_image: str) -> None:
    c = node_a.client()

    def publish(version: str) -> str:
        m = {"name": "pinned-tool", "version": version, "description": "Pinned.", "input_schema": {"type": "object"}, "runtime": {"image": runtime_image, "command": ["/usr/bin/python3", "-c", "print(1)"]}}
        return str(c.publish(m)["id"])

    v1 = publish("1.0.0")
    reg = atr.Registry(c)
    assert reg.get_tool("pinned-tool").id == v1
    v11 = publish("1.1.0")
    assert reg.get_tool("pinned-tool").id == v1  # a later version does not take over silently
    assert reg.get_tool("pinned-tool", refresh=True).id == v11
    assert reg.get_tool("pinned-tool").id == v11
    assert atr.Registry(c).get_tool("pinned-tool", "=1.0.0").id == v1


def test_module_level_verbs_on_node_b_run_a_tool_published_on_a(node_a: Node, node_b: Node, runtime_image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    reg_a = atr.Registry(node_a.client())

    def shout(text: str, times: int = 2) -> str:
        """Repeat a text in capitals.

        Args:
            text: What to repeat.
            times: How often.
        """
        return " ".join([text.upper()] * times)

    reg_a.register(shout, name="py-shout", version="1.0.0")
    published = atr.DockerExecutor(registry=reg_a).publish(reg_a.get_tool("py-shout"))
    monkeypatch.setattr(atr, "_default", None)
    atr.configure(api=node_b.api, data_dir=node_b.dir)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                spec = atr.get_tool("py-shout")  # not on B yet: asked of B's peers
                break
            except atr.ToolNotFoundError:
                assert time.monotonic() < deadline
                time.sleep(0.5)
        assert spec.id == published.id
        ex = atr.DockerExecutor()
        assert atr.execute_tool("py-shout", {"text": "hi"}, executor=ex) == "HI HI"
        assert ex.last is not None and ex.last.provider == node_a.client().status()["peer_id"]
        with pytest.raises(atr.ExecutorError):
            atr.execute_tool("py-shout", {"text": "hi"})  # no local function on B: LocalExecutor refuses
    finally:
        monkeypatch.setattr(atr, "_default", None)


def test_revoke_trust_and_receipts_through_the_client(node_a: Node, node_b: Node, runtime_image: str) -> None:
    c = node_a.client()
    m = {"name": "py-revoked", "version": "1.0.0", "description": "To revoke.", "input_schema": {"type": "object"}, "runtime": {"image": runtime_image, "command": ["/usr/bin/python3", "-c", "print(1)"]}}
    tool_id = c.publish(m)["id"]
    assert c.invoke(id=tool_id, input={}).output == 1
    r = c.revoke(id=tool_id, reason="test")
    assert tool_id in r["affected"]
    with pytest.raises(atr.ApiError) as e:
        c.invoke(id=tool_id, input={})
    assert e.value.code == "revoked"
    assert c.show(tool_id)["status"]["state"] == "revoked"  # a view's status is never cached
    a_peer = c.status()["peer_id"]
    cb = node_b.client()
    cb.trust_add(a_peer, label="node-a")
    assert any(t["publisher"] == a_peer for t in cb.trust()["entries"])
    cb.trust_remove(a_peer)
    assert not any(t["publisher"] == a_peer for t in cb.trust()["entries"])
    with pytest.raises(atr.ApiError) as e:
        cb.trust_add("not-a-key")
    assert e.value.code == "bad_request" and e.value.field == "publisher"
    assert any(rc["tool"] == tool_id for rc in c.receipts(limit=10))
