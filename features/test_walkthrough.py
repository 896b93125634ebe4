"""Binds every feature file in this directory; the steps live in `steps/`, loaded by the root conftest."""

from pytest_bdd import scenarios

scenarios(".")
