"""`python starter.py incident.json`: start (or find) the postmortem for a resolved incident."""

import sys

from followthrough.cli import main

if __name__ == "__main__":
    main(["incident", "resolved", *sys.argv[1:]])
