"""Network-namespace labs for the netns tests, the failover bench and ``lvsconsole demo``."""
