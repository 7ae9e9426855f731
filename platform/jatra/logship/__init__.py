"""Log shipping to Elasticsearch (`jatra worker logship`, `jatra logs ...`).

Every Jatra process's ECS JSON log is followed past a durable cursor (:mod:`jatra.infra.logfiles`); each
line becomes a ``create`` into the data stream ``logs-jatra.<dataset>-<environment>`` under an ``_id``
made from its place and bytes, so a line sent twice (after a restart of the shipper, of Elasticsearch
or of a process) is refused as a duplicate instead of indexed twice. The cursor moves only once every
event read is indexed, a duplicate, or set aside with Elasticsearch's reason.

- :mod:`~jatra.logship.documents`: a log line -> a bulk action (non-JSON lines wrapped, never dropped);
- :mod:`~jatra.logship.bulk`: one batch through the client's bulk helper, retried until every event is
  settled (429s and 5xx per event with back-off; stamina for connection errors and 5xx answers);
- :mod:`~jatra.logship.setaside`: the documents Elasticsearch refused, one file each, with the reason;
- :mod:`~jatra.logship.shipper`: read, ship, set aside, commit; metrics and lag;
- :mod:`~jatra.logship.setup`: the templates and the lifecycle policy (`jatra logs setup`);
- :mod:`~jatra.logship.worker`: the worker's iteration; :mod:`~jatra.logship.commands`: `jatra logs`.
"""
