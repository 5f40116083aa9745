from csbot.cli import main

raise SystemExit(main())
