"""People who sign in to the console: members of an org, their roles, passwords and
browser sessions. API keys stay in `tidings.keys`; a member acts through the same
services, with the scopes of their role (`roles.py`)."""
