"""Storage and cross-node signalling behind one interface (see ``base.py``).

Implementations: ``roost.backplane.sqlite`` (embedded, default) and
``roost.backplane.nats`` (cluster). Import the one you use; nothing here pulls
either in.
"""
