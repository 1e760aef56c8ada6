"""The admission server: /mutate injects capability sidecars, /validate applies the policy.

Injection and validation are pure functions of (review, catalog, namespace); `webhook.server`
only wires them to HTTP, TLS and metrics.
"""
