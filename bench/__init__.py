"""`make bench`: Pullthrough's performance figures against the sandbox (bench/README.md); never part of `make test`."""
