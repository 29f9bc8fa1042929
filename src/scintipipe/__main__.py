"""``python -m scintipipe`` runs the command line."""

from scintipipe.cli import main

main()
