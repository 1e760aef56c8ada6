"""`remora lint`: advice on sidecar patterns, from manifests or a live cluster.

Inputs become an `Inventory` (inputs.py for files, cluster.py for a cluster); each rule
in `lint.rules.RULES` is a pure function from that inventory to findings; report.py
renders the findings as text, JSON or SARIF.
"""
