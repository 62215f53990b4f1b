"""`python worker.py`: run a Followthrough worker against TEMPORAL_ADDRESS until Ctrl-C."""

from followthrough.cli import main

if __name__ == "__main__":
    main(["worker"])
