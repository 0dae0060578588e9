"""The client-offboarding worker: one durable Temporal workflow per departing client.

The README has a map of the package; in short, ``models`` is the typed contract,
``workflows`` the deterministic process, ``activities`` everything that touches the world,
``cli`` the ops front end, and ``config``/``temporal`` how a process is set up.
"""
