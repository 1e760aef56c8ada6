"""The shared ground: names, JSON and Kubernetes access that several Remora components need.

Nothing here imports another Remora package; every component may import from here.
"""
