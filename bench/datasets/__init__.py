"""Labelled synthetic data sets for the benchmarks, generated in code with fixed seeds."""
