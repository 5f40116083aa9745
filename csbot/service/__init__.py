"""service: what keeps a running csbot in step, whatever number of processes serve it.

    engine     builds the store, reply book, encoder, answer index, registry and bot from Settings,
               and offers the operations the CLI and the web app share (it wires; rules live elsewhere)
    follower   keeps this process's serving pieces caught up with changes made anywhere
    registry   model versions: save, gate, promote, roll back
    jobs       training runs in the background: one at a time, leases, cancelling
    worker     `python -m csbot worker`: claims queued training runs (a GPU machine)
    review     discovery runs over imported history, the review of their proposals, the gap topics
    auth       accounts, roles, password hashing, login sessions and lockouts
    ratelimit  a per-key sliding-window rate limiter

May import: every layer below it (nlu, dialogue, store) and the top modules. Must not import:
the web layer or any web framework; the CLI and the web app both sit on top of this layer.
tests/test_layers.py checks these rules.
"""
