"""Closed-form geometry of regions: power diagrams, facet adjacency, bends, decision boundary,
volumes."""

from .adjacency import Adjacency, facet_adjacency
from .bending import Bends, bends, decision_boundary_bends, planar_bends
from .boundary import DecisionPieces, decision_boundary_pieces
from .volume import Volumes, monte_carlo_volumes, polytope_volume, region_volumes

__all__ = ["Adjacency", "Bends", "DecisionPieces", "Volumes", "bends", "decision_boundary_bends",
           "decision_boundary_pieces", "facet_adjacency", "monte_carlo_volumes", "planar_bends",
           "polytope_volume", "region_volumes"]
