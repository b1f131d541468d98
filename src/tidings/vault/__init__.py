"""Secrets at rest: the keys that seal provider credentials and webhook secrets
(`keyring.py`), and where the master secret of a fresh install comes from (`master.py`).
The columns that hold sealed values are `db/sealed.py`'s."""
