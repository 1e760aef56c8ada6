"""A small reconcile runtime on plain dicts: informers, a work queue and a controller loop.

It follows controller-runtime's contract: a request is (namespace, name), a reconciler returns
a `Result` (requeue after N seconds, or nothing) or raises, and one switch in the controller
turns that outcome into a queue action.
"""
