"""Randomized-history fault suite: seeded histories of Omono changes, a bookkeeper's work in Xero and faults,
judged by an independent oracle (docs/RELIABILITY.md)."""
