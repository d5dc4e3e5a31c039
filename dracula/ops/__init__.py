"""Operations: metrics, logs, the memory budget, load shedding, the supervisor, connection age."""
