from finetune_gui.cli import main

raise SystemExit(main())
