"""Development tooling, never shipped in the production package: the local Qwen-compatible simulator.

Installed as a Django app only when it is importable (a checkout, `make dev`, the tests); a production
install of the `tokenhub` package does not contain it, nor its dependencies (starlette, uvicorn).
"""
