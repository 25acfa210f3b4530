"""L1 collection: context, scrubbing, logging, timing, metric instruments and aggregation.

Nothing here imports the storage layer: closed intervals and events are handed to whatever
:class:`~sounding.collection.sink.Sink` the runtime configured.
"""
