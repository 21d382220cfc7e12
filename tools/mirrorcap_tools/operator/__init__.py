"""The operator's commands on a deployed stack: start, watch, fetch, ls and open captures (docs/cli.md).

Everything here runs on an operator's laptop with their own AWS credentials; none of it ships in the
Lambda layer. The capture document is the layer's own `ManualRequest`, so what the CLI sends is what
the console and the state machine accept.
"""
