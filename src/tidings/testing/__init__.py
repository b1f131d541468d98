"""Fakes for testing Tidings and what is built on it: product code, kept typed and tested
like the rest (tests/unit/test_testing.py), importable without side effects.

    Clock              time that moves only when the test moves it      clock.py
    RecordingChannel   a Channel that records and answers per a rule    channel.py
"""

from tidings.testing.channel import RecordingChannel, Rule, answers, raising, sent
from tidings.testing.clock import Clock

__all__ = ["Clock", "RecordingChannel", "Rule", "answers", "raising", "sent"]
