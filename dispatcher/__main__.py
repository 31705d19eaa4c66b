"""``python -m dispatcher`` runs the command line."""

from dispatcher.cli import main

main()
