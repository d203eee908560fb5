"""Custos: a supervisory HMI whose records prove their own integrity."""

__version__ = "0.1.0"
