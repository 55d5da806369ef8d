"""The ancestor's Quick Start tool, for the execute_tool benchmark."""


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b
