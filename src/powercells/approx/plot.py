"""Figures of exact against approximate (matplotlib, an optional dependency).

* :func:`plot_sampling_convergence`: sampled pattern counts against N, with the exact count.
* :func:`plot_local_complexity`: LC against the exact neuron counts, per layer.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_local_complexity", "plot_sampling_convergence"]


def _axes(ax):
    if ax is not None:
        return ax.figure, ax
    from ..plot import _pyplot

    return _pyplot().subplots(figsize=(6, 4))


def plot_sampling_convergence(comparison, *, ax=None, label=None, per_layer: bool = False):
    """Sampled activation patterns that are regions against the number of samples N (log
    scale), with the exact region count as a horizontal line: the count converges to it, or
    visibly does not. On a partial tree every sampled pattern is drawn (dashed): they cannot be
    told apart from patterns of regions never enumerated.

    Parameters
    ----------
    comparison : Comparison
        From :func:`powercells.compare` (random or Sobol samples: nested counts).
    ax : matplotlib Axes, optional
    label : str, optional
        Legend label of the curve (default: the domain).
    per_layer : bool
        Also draw each layer's sampled prefix count, dashed.

    Returns
    -------
    matplotlib Figure
    """
    fig, ax = _axes(ax)
    s = comparison.sampling
    if comparison.found is None:       # partial tree: the patterns are not classified
        line, = ax.plot(s.n_samples, s.regions, "o--",
                        label=f"{label or comparison.domain} (all patterns; partial tree)")
    else:
        line, = ax.plot(s.n_samples, comparison.found, "o-", label=label or comparison.domain)
        if np.any(comparison.found != s.regions):
            ax.plot(s.n_samples, s.regions, "x", color=line.get_color(),
                    label="with sliver / spurious patterns")
    ax.axhline(comparison.regions, color=line.get_color(), ls=":", lw=1)
    if per_layer:
        for i, (col, exact) in enumerate(zip(s.per_layer.T, comparison.per_layer), 1):
            ax.plot(s.n_samples, col, "--", lw=0.8, label=f"layer {i} (exact {exact})")
    ax.set_xscale("log")
    ax.set_xlabel("samples N")
    ax.set_ylabel("distinct activation patterns")
    ax.set_title("sampling counts (dotted: exact)")
    ax.legend(fontsize="small")
    return fig


def plot_local_complexity(result, *, ax=None, title=None):
    """LC (the estimate) beside the exact number of neurons whose zero set meets the
    neighbourhood, per layer, averaged over the points.

    Parameters
    ----------
    result : LocalComplexityComparison
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Figure
    """
    fig, ax = _axes(ax)
    lc = result.estimate.per_layer
    exact = result.exact.per_layer
    layers = np.arange(1, len(lc) + 1)
    ax.bar(layers - 0.2, lc, width=0.4, label="LC (vertex signs)")
    ax.bar(layers + 0.2, exact, width=0.4, label="exact neurons")
    ax.set_xticks(layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("neurons (mean over points)")
    ax.set_title(title or f"local complexity, r = {result.estimate.radius:g}, "
                          f"P = {result.estimate.directions.shape[2]}; "
                          f"{result.exact.regions.mean():.1f} regions")
    ax.legend(fontsize="small")
    return fig
