"""Bounces and complaints for SMTP: DSNs (RFC 3464) and ARF reports (RFC 5965)."""
