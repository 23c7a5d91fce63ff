"""Daemon: the three-thread pipeline that wires capture, restore and output, the store thread's work, the stills
queue and its disk spool, lens steering, the status file's shape, the thermal governor, GPIO, the systemd service
seam, the hooks between them, and the counters.

May import: capture, optics, restore, output and the top-level basics.
"""
