"""``roost``: run a node (``roost serve``) and drive one from a terminal (the SDK on a terminal)."""
