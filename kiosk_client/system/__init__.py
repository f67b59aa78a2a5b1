"""The kiosk's place in the operating system: its compositor session and the service manager."""
