"""`python -m pullthrough.config --check FILE` / `--schema`: validate a config, or print its JSON schema."""

from pullthrough.config import main

raise SystemExit(main())
