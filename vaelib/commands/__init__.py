"""The command line's pieces, one module per seam.

`arguments` (argparse types and the usage error), `data` (the data a command
trains or measures on), `models` (building, loading and describing models),
`report` (held-out metrics and their tables) and `run` (what each subcommand
does, in order). `vaelib.cli` parses the command line and dispatches.
"""
