"""asmfield: the composition root (settings, database, accounts, auth, CLI, web)."""
