"""Message content and the limits channels put on it."""
