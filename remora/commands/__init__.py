"""One module per `remora` subcommand, each with `register(parser)` and `run(args) -> int`.

Command modules import their component inside `run`, so `remora --help` stays fast.
"""
