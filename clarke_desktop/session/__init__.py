"""The application layer: whole consultation flows over the core packages, without Qt, for the
command line now and the GUI as it moves over (issue 13)."""
