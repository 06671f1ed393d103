"""The pure core: every decision of the distributed algorithm, with no I/O.

Nothing in this package reads a clock, draws randomness, touches a file or a socket, or logs.
Time and randomness are arguments; results are values the shell acts on.
"""
