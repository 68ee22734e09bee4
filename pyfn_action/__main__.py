from pyfn_action.cli import main

raise SystemExit(main())
