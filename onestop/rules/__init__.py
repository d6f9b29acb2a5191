"""One-stop rules that decide without I/O: given a dossier's state and what just happened,
what changes. Nothing here touches the database or SpiffWorkflow."""
