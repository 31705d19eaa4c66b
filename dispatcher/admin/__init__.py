"""The use cases the command line and the HTTP API share, and the access store."""
