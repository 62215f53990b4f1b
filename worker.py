"""`python worker.py`: run a Followthrough worker against TEMPORAL_ADDRESS until Ctrl-C."""

import sys

from followthrough.cli import main

if __name__ == "__main__":
    # Its arguments reach the `worker` command, so `--help` prints help instead of starting one.
    main(["worker", *sys.argv[1:]])
