"""The outbox: one message row per recipient of a send, and everything that reads or
moves one on the way to its final status.

    create.py    every message row is created here (expansion, held recipients, single)
    rules.py     the skip rule and the due-time rule, Python beside their SQL twins
    local.py     wall-clock time in a recipient's zone, quiet hours (the due-time rule's)
    timing.py    a send's Timing (org, campaign, broadcast), its zones, its due schedule
    status.py    MessageStatus, its transition table and the groups derived from it
    audience.py  which contacts a broadcast's expansion selects
    moves.py     a broadcast's messages moved together (pause, resume, cancel)
    queue.py     the hot path's leases: claim, reap, skip_suppressed, next_due
    outcomes.py  what came of claimed messages, written back set-based

Everything here is a query helper: the entry point (a route, a CLI command, a
dispatcher step) owns the transaction it runs in.
"""
