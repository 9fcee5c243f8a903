from .tiny_multitask import main

raise SystemExit(main())
