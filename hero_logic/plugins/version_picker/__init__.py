"""Version picker plugins: which version of a workflow to run, from its benchmarks."""

from ._weighted import WeightedPicker as WeightedPicker
