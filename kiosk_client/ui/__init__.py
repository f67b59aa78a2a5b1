"""The kiosk's Qt user interface: thin, renders the engine's state. The only package importing PySide6."""
