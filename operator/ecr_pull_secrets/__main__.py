from ecr_pull_secrets.cli.main import main

raise SystemExit(main())
