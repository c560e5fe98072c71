"""`python -m pullthrough.config --check FILE` / `--schema`: validate a config, or print its JSON schema."""

from pullthrough.config.command import main

raise SystemExit(main())
