"""Per-recipient links: signed tokens for click, unsubscribe and open tracking."""
