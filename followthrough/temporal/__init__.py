"""Talking to Temporal, in three parts so each process loads only what it uses.

    client.py     connect, register search attributes, start a postmortem (API, CLI, worker)
    schedules.py  the schedules a worker makes sure exist (digests, reconciliation, stuck work)
    worker.py     build_worker: every workflow and activity (the worker and `followthrough up`)

People's actions (updates) are followthrough/actions.py. The task queue's name is here, not in
`workflows`, so settings can name the default without importing any workflow code.
"""

TASK_QUEUE = "followthrough"
