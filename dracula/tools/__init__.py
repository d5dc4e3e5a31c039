"""Tools: `dracula call` / `dracula describe`, their JSON mapping, the THeader client transport."""
