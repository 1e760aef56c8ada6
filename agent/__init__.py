"""The agent, the broker protocol it speaks (openapi.yaml, client.py) and the reference broker."""
