"""The admin web app (FastAPI on uvicorn): the operator's page and API, the players' voice page, /healthz, /metrics.

It reaches the rest of the host only through the hub, the store, the profiles and the transcript files, never by
importing brain, speech or bridge code (tests/test_admin_layering.py holds it to that).
"""
