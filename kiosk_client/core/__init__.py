"""The kiosk's core: models, the session state machine, protocols and the engine.

Nothing here imports Qt, httpx, aiortc or any device library; adapters translate those into the
types and errors defined here.
"""
