"""Delivery of reports to where operators look: the Grafana annotation and chat/email notifications (Apprise).

Every channel is a :class:`~triage.notify.base.Notifier`; :func:`~triage.notify.dispatch.deliver_all` is the one
place the job calls, and it records each channel's state on the report (``Report.channels``).
"""
