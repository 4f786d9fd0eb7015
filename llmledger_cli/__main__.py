import sys

from llmledger_cli.main import main

sys.exit(main())
