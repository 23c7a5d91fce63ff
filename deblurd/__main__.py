"""`python -m deblurd` and the `deblurd` console script: the `deblurd` command.

Stop signals are held from the first line: importing the command takes most of a second, and a SIGINT then would
print a traceback and a SIGTERM would end the daemon without a final status. cli.main acts on a held signal as
soon as it can (`run` stops cleanly at once, writing its final status; other commands end as the signal asks).
"""

import signal
import sys

HELD_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def main() -> int:
    held: list[int] = []
    for sig in HELD_SIGNALS:
        signal.signal(sig, lambda signum, _frame: held.append(signum))
    from deblurd.cli import main as cli_main

    return cli_main(held_signals=held)


if __name__ == "__main__":
    sys.exit(main())
