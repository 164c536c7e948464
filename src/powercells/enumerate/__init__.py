"""Exact enumeration: the driver, the engines, the subdivision tree and its sinks."""

from .driver import RegionCount, count_regions, stream_leaves, subdivide
from .engines import (
    ENGINES,
    Engine,
    EngineOptions,
    EngineSetup,
    EngineSpec,
    choose_engine,
    engine_defaults,
    engine_names,
    register_engine,
)
from .lp_engine import EngineStats, LPEngine
from .regions import region_halfspaces
from .sinks import CountSink, Sink, TreeSink
from .tolerances import Tolerances
from .tree import Level, SliverTable, SubdivisionTree

__all__ = [
           "ENGINES",
           "CountSink",
           "Engine",
           "EngineOptions",
           "EngineSetup",
           "EngineSpec",
           "EngineStats",
           "LPEngine",
           "Level",
           "RegionCount",
           "Sink",
           "SliverTable",
           "SubdivisionTree",
           "Tolerances",
           "TreeSink",
           "choose_engine",
           "count_regions",
           "engine_defaults",
           "engine_names",
           "region_halfspaces",
           "register_engine",
           "stream_leaves",
           "subdivide",
]
