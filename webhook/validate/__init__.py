"""Validation: Pod Security levels (baseline, restricted, hardened) and owner-reference rules.

`checks/` holds one module per check, `registry` picks the checks per level, `pods` finds the pod
in an object, `policy` turns namespace labels into enforce/warn/audit answers, `owners` keeps the
garbage-collection chain intact and `handler.Validator` answers /validate.
"""
