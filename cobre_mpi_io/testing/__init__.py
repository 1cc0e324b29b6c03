"""Deterministic synthetic data (simulation payloads, training logs, policies) for the demo, benchmarks and tests.

Nothing in the core imports this package."""

from __future__ import annotations


