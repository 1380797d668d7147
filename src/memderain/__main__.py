from memderain.cli import main

raise SystemExit(main())
