"""Exact enumeration: the driver, the engines, the subdivision tree and its sinks."""

from .driver import ENGINES, RegionCount, count_regions, stream_leaves, subdivide
from .lp_engine import EngineStats, LPEngine
from .regions import region_halfspaces
from .sinks import CountSink, Sink, TreeSink
from .tolerances import Tolerances
from .tree import Level, SliverTable, SubdivisionTree

__all__ = [
           "ENGINES",
           "CountSink",
           "EngineStats",
           "LPEngine",
           "Level",
           "RegionCount",
           "Sink",
           "SliverTable",
           "SubdivisionTree",
           "Tolerances",
           "TreeSink",
           "count_regions",
           "region_halfspaces",
           "stream_leaves",
           "subdivide",
]
