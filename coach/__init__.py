"""sleepcoach's pure coaching core: events in, decisions out, no I/O and no clock."""
