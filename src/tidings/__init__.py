"""Tidings: self-hosted campaigns, invitations and broadcasts by email and SMS."""

__version__ = "0.1.0"
