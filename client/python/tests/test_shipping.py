"""What travels into a function's tool image: helpers, dataclass and enum parameters, typing
names, module constants and a pure-Python third-party package, run in the real sandbox; what
cannot travel is refused at publish time."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Optional

import iniconfig  # pure Python, installed with pytest
import pytest

import atr
from atr.ship import ShipError, ship

from conftest import Node

SCALE = 10


class Unit(enum.Enum):
    CM = "cm"
    M = "m"


@dataclass
class Box:
    w: float
    h: float = 1.0
    labels: list[str] = field(default_factory=list)


def _area(b: Box) -> float:
    return b.w * b.h * SCALE


def measure(box: Box, unit: Unit = Unit.CM, note: Optional[str] = None, config: str = "[a]\nk = v\n") -> dict:
    """Measure a box.

    Args:
        box: The box.
        unit: Unit of the answer.
        note: Free text.
        config: An ini text whose [a] k is echoed.
    """
    assert isinstance(box, Box) and isinstance(unit, Unit)
    ini = iniconfig.IniConfig("x.ini", data=config)
    return {"area": _area(box), "unit": unit.value, "labels": sorted(box.labels), "note": note, "k": ini["a"]["k"]}


LOCK = threading.Lock()


def uses_a_lock(x: int) -> int:
    with LOCK:
        return x


def test_shipped_source_runs_in_the_sandbox(node_a: Node, runtime_image: str) -> None:
    reg = atr.Registry(node_a.client())
    reg.register(measure, name="py-measure", version="1.0.0")
    spec = reg.get_tool("py-measure")
    local = atr.LocalExecutor().execute(spec, {"box": {"w": 2, "h": 3, "labels": ["b", "a"]}, "unit": "m"})
    ex = atr.DockerExecutor(registry=reg)
    remote = ex.execute(spec, {"box": {"w": 2, "h": 3, "labels": ["b", "a"]}, "unit": "m"})
    assert remote == local == {"area": 60.0, "unit": "m", "labels": ["a", "b"], "note": None, "k": "v"}
    assert ex.last is not None and ex.last.status == "ok"
    src = ship(measure)
    assert "iniconfig/__init__.py" in src.lib_files and "class Box" in src.source and "def _area" in src.source
    assert "SCALE = 10" in src.source


def test_what_cannot_travel_is_refused_at_publish() -> None:
    with pytest.raises(ShipError, match="LOCK"):
        ship(uses_a_lock)
