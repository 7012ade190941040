"""Real faults against a rendered project: the rig the resilience tests share.

A rendered app runs under uvicorn with 2 workers; a load driver in another process records every
request; faults are real: backends terminated, a server restarted, packets dropped in a network
namespace, a peer that stops answering, a table locked, a real PgBouncer in transaction mode.
"""
