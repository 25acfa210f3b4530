"""L0 core: types, configuration, exceptions, clock and internal health counters.

Nothing here imports from any other layer.
"""
