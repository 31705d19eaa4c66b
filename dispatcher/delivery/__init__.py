"""From event to sent e-mail: the orchestrator, the delivery record, limits, replay."""
