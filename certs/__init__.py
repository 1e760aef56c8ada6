"""Certificates for Remora's webhook: a CA, a serving certificate, the Secret that holds them,
the caBundle of the webhook configurations, and the rotation that keeps all of them valid.
"""
