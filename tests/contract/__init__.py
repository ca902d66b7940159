"""Contract tests: meetscale against Jitsi's own sources (fixtures cite each fact)."""
