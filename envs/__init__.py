"""Brax environment construction and wrappers, plus tiny probe environments for tests."""
