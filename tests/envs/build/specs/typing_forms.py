# ruff: noqa: I001, UP006, UP007, UP035, UP037, UP045 - the old typing forms are what this fixture tests
"""Annotation forms a module may use: typing aliases, string annotations, Annotated, IntEnum."""

from __future__ import annotations
import typing
from typing import Annotated, List, Dict, Optional, Union
import enum


class Size(enum.IntEnum):
    S = 1
    L = 3


def f(
    a: List[int],
    b: Dict[str, float],
    c: Optional[str] = None,
    d: "typing.Literal['x', 'y']" = "x",
    e: Union[int, str] = 1,
    g: Annotated[int, "meta"] = 2,
    h: list[Size] | None = None,
    *,
    k: bool = True,
) -> Dict[str, int]:
    """Does things.

    Args:
        a: Some ints.
        b: A mapping.
        c (str): Optional text.
        k: A flag
            continued on the next line.

    Returns:
        A mapping of counts.
    """
    return {}
