"""The reference central: the Central API v1 on SQLite, and the clerk console.

Councils implement the Central API in their own back ends; this one is the spec made runnable, for
the demo, the tests and the benchmarks. The kiosk's code never imports this package.
"""
