"""Optional integrations with other telemetry systems (extras, imported lazily).

Each integration lives in its own module and imports its third-party library only when it is
used; none is imported by ``sounding``'s own layers. A missing library is reported with the
name of the extra to install (for example ``pip install 'sounding[sentry]'``).

- :mod:`sounding.integrations.sentry`: opt-in error reporting with the Sentry SDK
  (:func:`~sounding.integrations.sentry.initialize_telemetry`,
  :func:`~sounding.integrations.sentry.filter_event`).
- :mod:`sounding.integrations.structlog`: a structlog processor that hands structlog events
  to sounding (:class:`~sounding.integrations.structlog.SoundingProcessor`).
"""
