"""Fakes for testing Tidings and what is built on it: product code, kept typed and tested
like the rest (tests/unit/test_testing.py), importable without side effects.

    Clock              time that moves only when the test moves it      clock.py
"""

from tidings.testing.clock import Clock

__all__ = ["Clock"]
