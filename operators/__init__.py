"""Capability operators: the reconcile runtime, one operator per capability, and the CRDs they own.

`operators.runtime` is the machinery (watch, cache, queue, controller loop, probes); the
capability modules (`build`, `testrun`, `migrate`) are a pure `desired_job(resource)` and a
reconcile decision from observed state to actions, which `operators.capability` carries out.
"""
