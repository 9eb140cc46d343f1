"""sleepcoach's shell: MQTT, scheduling, storage, Home Assistant, device profiles and the CLI."""
