"""`python -m bigtop` is the same program as `bigtop`."""

from bigtop.cli.main import main

raise SystemExit(main())
