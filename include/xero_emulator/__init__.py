"""A stateful local emulator of the parts of the Xero Accounting API that omono-xero-sync uses.

It is a product component in its own room: the demo and every integration test drive the real xero-python
SDK against it over HTTP. The sync pipeline never imports this package; it only knows a base URL.
Entry points: `include.xero_emulator.app.create_app` (ASGI app) and `python -m include.xero_emulator`.
"""
